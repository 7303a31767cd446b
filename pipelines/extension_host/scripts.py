"""Running a script (A1111's selectable scripts): a procedure that may run the engine several times.

The UI and the API name a script by its title and pass its arguments by field name (or, for a script
that declares ``positional``, in A1111's positional ``script_args`` layout). The runner checks them,
hands the script a :class:`~pipelines.extension_api.ScriptRun`, and returns the script's
GenerationResult. Every engine run inside it is an ordinary job: hooks, progress, interrupt.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pipelines.engine import Engine
from pipelines.errors import AtelierError, ExtensionError, ValidationError
from pipelines.extension_api import Script, ScriptRun
from pipelines.hooks.registry import ExtensionRegistry, check_fields
from pipelines.jobs import JobOwner
from pipelines.models.kinds import ModelType
from pipelines.outputs import save_image
from pipelines.progress import ProgressFn, ignore_progress
from pipelines.results import GeneratedImage, GenerationResult

log = logging.getLogger(__name__)
NONE = "None"  # the Scripts dropdown's "no script" entry, as in A1111


class ScriptRunner:
    """Finds scripts in the registry and runs them on the engine."""

    def __init__(self, engine: Engine, registry: ExtensionRegistry) -> None:
        self.engine = engine
        self.registry = registry

    def titles(self, mode: str) -> list[str]:
        return [script.title for _, script in self.registry.scripts(mode)]

    def find(self, title: str, mode: str, *, field: str = "script_name") -> tuple[str, Script]:
        found = self.registry.script(title)
        if found is None or mode not in found[1].modes:
            raise ValidationError(field, f"no {mode} script named {title!r}; the scripts are {self.titles(mode)}")
        return found

    def arguments(self, script: Script, args: Mapping[str, Any] | Sequence[Any] | None, mode: str, *,
                  field: str = "script_args") -> dict[str, Any]:
        """The script's values by field name: from a mapping by name, or a positional list (the script's own
        ``positional`` mapping, else its fields in order)."""
        if args is None:
            args = {}
        if isinstance(args, Sequence) and not isinstance(args, str):
            if script.positional is not None:
                try:
                    args = script.positional(list(args), mode)
                except (ValueError, TypeError, IndexError) as exc:
                    raise ValidationError(field, f"cannot read {script.title}'s positional arguments: {exc}") from exc
            else:
                if len(args) > len(script.fields):
                    raise ValidationError(field, f"{script.title} takes {len(script.fields)} arguments, "
                                                 f"got {len(args)}")
                args = {f.name: value for f, value in zip(script.fields, args, strict=False)}
        if not isinstance(args, Mapping):
            raise ValidationError(field, f"must be a list or an object of values by name, got {type(args).__name__}")
        return check_fields(script.fields, args, field)

    def run(self, title: str, request: Any, args: Mapping[str, Any] | Sequence[Any] | None = None, *,
            on_progress: ProgressFn = ignore_progress,
            extension_args: Mapping[str, Mapping[str, Any]] | None = None, owner: JobOwner | None = None,
            task_id: str | None = None) -> GenerationResult:
        """Run the script titled ``title`` for ``request`` (validated first) as ``owner``'s jobs (``task_id``:
        the id the client gave, shared by all of them); its failures name the extension."""
        extension, script = self.find(title, request.mode)
        values = self.arguments(script, args, request.mode)
        request.validate()
        stopped, count = [False], [0]
        presses = self.engine.interrupts(owner, task_id)  # the owner's Interrupt between two jobs stops it too

        def generate(job: Any) -> GenerationResult:
            count[0] += 1
            label = f"{script.title}, job {count[0]}"
            result = self.engine.generate(job, extension_args=extension_args, owner=owner, task_id=task_id,
                                          on_progress=lambda u: on_progress(replace(u, text=f"{label} · {u.text}")))
            stopped[0] = stopped[0] or result.interrupted
            return result

        def save_grid(image: Any, infotext: str) -> GeneratedImage:
            path = None
            if request.save_images:
                path = save_image(image, outputs_dir=self.engine.settings.outputs_dir, mode=request.mode, seed=None,
                                  infotext=infotext, kind="grids")
                if self.engine.history is not None:
                    self.engine.history.record(path, infotext, size=image.size, mode=request.mode)
                self.registry.for_job(extension_args).image_saved(path, image, infotext, request.mode)
            return GeneratedImage(image=image, seed=-1, infotext=infotext, path=path)

        def checkpoints() -> list[str]:
            return [r.name for r in self.engine.store.records(ModelType.CHECKPOINT) if r.installed and not r.problem]

        run = ScriptRun(request=request, args=values, generate=generate, save_grid=save_grid, checkpoints=checkpoints,
                        interrupted=lambda: stopped[0] or self.engine.interrupts(owner, task_id) != presses)
        try:
            result = script.run(run)
        except AtelierError:  # the user's input or a hook: already says what is wrong
            raise
        except ValueError as exc:  # the documented way for a script to refuse its arguments
            raise ValidationError("script_args", str(exc)) from exc
        except Exception as exc:  # a bug in the script: name its extension
            log.exception("script %s of extension %s failed", script.title, extension)
            raise ExtensionError(extension, f"script {script.title!r}", exc) from exc
        if not isinstance(result, GenerationResult):
            raise ExtensionError(extension, f"script {script.title!r}",
                                 TypeError(f"returned a {type(result).__name__}, not a GenerationResult"))
        return replace(result, info={**result.info, "script_name": script.title})
