"""The one module an Atelier extension imports: hook points, event payloads, UI and script declarations.

An extension is a folder with an ``extension.py`` that defines::

    from pipelines.extension_api import API_VERSION, ExtensionContext, HookPoint

    api_version = 1                      # the API it was written for (checked at load)

    def register(ctx: ExtensionContext) -> None:
        ctx.on(HookPoint.BEFORE_JOB, lambda event: ...)

Everything here is plain data or plain callables; nothing imports gradio or fastapi. UI contributions
are declared as data (:class:`Section` fields, :class:`Script` fields, :class:`Option`); a :class:`Tab`
carries a ``build()`` callable that the web UI calls inside its ``gr.Tab`` (gradio is importable
there, and only there). A :class:`Route` handler is served by FastAPI under ``/extensions/<name>/``.
``extensions/README.md`` shows a complete extension and lists the hook points.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipelines.results import GeneratedImage, GenerationResult  # what scripts return (plain dataclasses)

API_VERSION = 1
SUPPORTED_API_VERSIONS = (1,)

__all__ = ["API_VERSION", "AfterJob", "AppStarted", "BeforeJob", "ExtensionContext", "Field", "GeneratedImage",
           "GenerationResult", "HookPoint", "ImageSaved", "JobChange", "ModelLoaded", "Option", "Route", "Script",
           "ScriptRun", "Section", "StepChange", "StepEnd", "Tab"]


class HookPoint(enum.StrEnum):
    """Where the engine calls extensions, in the order a job meets them."""

    APP_STARTED = "app_started"  # once, after the server is up: AppStarted -> None
    BEFORE_JOB = "before_job"  # BeforeJob -> None | a changed request | JobChange (this job only)
    MODEL_LOADED = "model_loaded"  # a checkpoint is newly in memory, before its first job uses it: ModelLoaded -> None
    STEP_END = "step_end"  # after each denoising step: StepEnd -> None | StepChange (new latents, or stop)
    IMAGE_SAVED = "image_saved"  # an image file was written: ImageSaved -> None
    AFTER_JOB = "after_job"  # the job's result: AfterJob -> None


# ---- hook payloads ---------------------------------------------------------------------------

@dataclass(frozen=True)
class AppStarted:
    url: str  # where the server answers, e.g. http://127.0.0.1:7860/
    data_dir: Path


@dataclass(frozen=True)
class ModelLoaded:
    name: str  # the checkpoint's name in the model store
    architecture: str | None  # "sd1", "sd2", "sdxl", ...
    pipeline: Any  # the diffusers pipeline (shared by every job: do not change it)


@dataclass(frozen=True)
class BeforeJob:
    request: Any  # the job's request (pipelines.requests.*, frozen): return a changed copy to change this job
    args: Mapping[str, Any]  # this extension's section values by field name ({} when not sent)


@dataclass(frozen=True)
class JobChange:
    """What a ``before_job`` hook may return: a changed request and/or infotext keys for the job's images."""

    request: Any | None = None
    infotext: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepEnd:
    step: int  # 0-based index of the denoising step that just ended
    total: int  # denoising steps of this pass
    timestep: Any  # the scheduler's timestep (a tensor)
    sigma: float | None  # the noise level the latents are at now (k-diffusion schedulers), else None
    latents: Any  # torch.Tensor (batch, channels, h/8, w/8): read it, or return changed ones in a StepChange
    request: Any
    args: Mapping[str, Any]


@dataclass(frozen=True)
class StepChange:
    latents: Any = None  # replaces the latents for the next step (same shape, dtype and device)
    stop: bool = False  # end the job after this step (like Interrupt: the images so far are kept)


@dataclass(frozen=True)
class ImageSaved:
    path: Path
    image: Any  # PIL.Image.Image
    infotext: str
    mode: str  # "txt2img", "img2img", "extras", ...


@dataclass(frozen=True)
class AfterJob:
    request: Any
    result: Any  # pipelines.results.GenerationResult
    args: Mapping[str, Any]


# ---- UI declarations -------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One named input. ``kind``: "number", "slider", "checkbox", "text", "dropdown" (``choices``)."""

    name: str  # the key its value has in ``args``
    label: str
    kind: str = "number"
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()

    KINDS = ("number", "slider", "checkbox", "text", "dropdown")

    def coerce(self, value: Any) -> Any:
        """``value`` as this field's type, or ValueError saying why not (None: the default)."""
        if value is None:
            return self.default
        if self.kind in ("number", "slider"):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"{self.name} must be a number, got {value!r}")
            number = float(value)
            if (self.minimum is not None and number < self.minimum) or (
                    self.maximum is not None and number > self.maximum):
                raise ValueError(f"{self.name} must be between {self.minimum:g} and {self.maximum:g}, got {number:g}")
            return int(number) if isinstance(self.default, int) and number.is_integer() else number
        if self.kind == "checkbox":
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be true or false, got {value!r}")
            return value
        if self.kind == "dropdown" and self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {list(self.choices)}, got {value!r}")
        return value if self.kind == "dropdown" else str(value)


@dataclass(frozen=True)
class Section:
    """An accordion in the txt2img / img2img tabs; its values reach the extension's hooks as ``args``."""

    title: str
    fields: tuple[Field, ...]
    modes: tuple[str, ...] = ("txt2img", "img2img")
    enabled_field: str | None = None  # a checkbox field: while it is off, the hooks get {} (not active)


@dataclass(frozen=True)
class ScriptRun:
    """What a script's ``run`` gets: the job the form describes and ways to run jobs like it."""

    request: Any  # the request the tab or the API built
    args: Mapping[str, Any]  # the script's field values by name
    generate: Callable[[Any], Any]  # run one request through the engine (hooks, progress): -> GenerationResult
    save_grid: Callable[[Any, str], Any]  # (PIL image, infotext) -> GeneratedImage (saved when the job saves)
    checkpoints: Callable[[], list[str]]  # names of the installed checkpoints
    interrupted: Callable[[], bool]  # True once the user pressed Interrupt


@dataclass(frozen=True)
class Script:
    """A generation procedure picked from the Scripts dropdown (A1111's selectable scripts)."""

    title: str  # shown in the dropdown; the API's script_name (case-insensitive)
    run: Callable[[ScriptRun], Any]  # -> GenerationResult (a grid first when it makes one); ValueError: bad args
    fields: tuple[Field, ...] = ()
    modes: tuple[str, ...] = ("txt2img", "img2img")
    # A1111's positional script_args -> args by name: positional(script_args, mode); raise ValueError if unreadable
    positional: Callable[[Sequence[Any], str], dict[str, Any]] | None = None


@dataclass(frozen=True)
class Tab:
    title: str
    build: Callable[[], None]  # called by the web UI inside ``with gr.Tab(title):``; import gradio inside it


@dataclass(frozen=True)
class Route:
    path: str  # below /extensions/<extension name>, e.g. "/status"
    handler: Callable[..., Any]  # a function FastAPI can serve (typed parameters; returns JSON-able data)
    methods: tuple[str, ...] = ("GET",)


@dataclass(frozen=True)
class Option:
    """A setting shown in the Settings tab and kept in config.json under ``key``."""

    key: str  # prefix it with the extension's name: config.json is shared
    label: str
    default: Any
    choices: tuple[Any, ...] = ()


class ExtensionSink(Protocol):
    """What the host records an extension's contributions into (pipelines.hooks.registry)."""

    def add_hook(self, extension: str, point: HookPoint, fn: Callable[[Any], Any]) -> None: ...

    def add_contribution(self, extension: str, item: Section | Script | Tab | Route | Option) -> None: ...

    def option_value(self, key: str, default: Any) -> Any: ...


class ExtensionContext:
    """Handed to ``register(ctx)``: everything an extension may add, recorded under its name."""

    def __init__(self, name: str, folder: Path, sink: ExtensionSink) -> None:
        self.name = name
        self.folder = folder
        self._sink = sink

    def on(self, point: HookPoint | str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Call ``fn(event)`` at ``point`` (see :class:`HookPoint` for the payload and what it may return)."""
        self._sink.add_hook(self.name, HookPoint(point), fn)
        return fn

    def add_section(self, section: Section) -> None:
        self._sink.add_contribution(self.name, section)

    def add_script(self, script: Script) -> None:
        self._sink.add_contribution(self.name, script)

    def add_tab(self, tab: Tab) -> None:
        self._sink.add_contribution(self.name, tab)

    def add_route(self, route: Route) -> None:
        self._sink.add_contribution(self.name, route)

    def add_option(self, option: Option) -> None:
        self._sink.add_contribution(self.name, option)

    def option(self, key: str, default: Any = None) -> Any:
        """The current value of a setting (an :class:`Option` or any config.json key)."""
        return self._sink.option_value(key, default)
