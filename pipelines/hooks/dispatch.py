"""Calling extension hooks for one job: each call is checked, and a failing hook fails only this job.

A :class:`JobHooks` is made per job (``ExtensionRegistry.for_job``) and dropped with it: what a hook
changes (the request, the latents, infotext keys) lives in this job's objects only, so nothing leaks
into the next job. An exception in a hook becomes :class:`~pipelines.errors.ExtensionError` naming
the extension and the hook point.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import ExtensionError
from pipelines.extension_api import (
    AfterJob,
    AppStarted,
    BeforeJob,
    HookPoint,
    ImageSaved,
    JobChange,
    ModelLoaded,
    StepChange,
    StepEnd,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HookEntry:
    extension: str
    point: HookPoint
    fn: Callable[[Any], Any]

    def call(self, event: Any) -> Any:
        try:
            return self.fn(event)
        except Exception as exc:
            log.exception("extension %s failed in %s", self.extension, self.point.value)
            raise ExtensionError(self.extension, self.point.value, exc) from exc


def app_started(hooks: list[HookEntry], event: AppStarted) -> list[str]:
    """Run the app_started hooks; a failing one is logged and named in the returned list (the app serves on)."""
    failed = []
    for entry in hooks:
        try:
            entry.call(event)
        except ExtensionError as exc:
            failed.append(str(exc))
    return failed


class JobHooks:
    """The hooks of one job, with each extension's section values (``args``) for it."""

    def __init__(self, hooks: list[HookEntry], args: Mapping[str, Mapping[str, Any]],
                 seen_models: weakref.WeakSet | None = None) -> None:
        self._hooks = hooks
        self._seen_models = seen_models if seen_models is not None else weakref.WeakSet()
        self.args = args
        self.infotext: dict[str, Any] = {}  # keys before_job hooks add to this job's images
        self.request: Any = None  # the request as the before_job hooks left it

    def _at(self, point: HookPoint) -> list[HookEntry]:
        return [h for h in self._hooks if h.point is point]

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def args_of(self, extension: str) -> Mapping[str, Any]:
        return self.args.get(extension, {})

    def before_job(self, request: Any) -> Any:
        """The request after every before_job hook (each sees the previous one's changes)."""
        for entry in self._at(HookPoint.BEFORE_JOB):
            answer = entry.call(BeforeJob(request, self.args_of(entry.extension)))
            if isinstance(answer, JobChange):
                self.infotext.update(answer.infotext)
                answer = answer.request
            if answer is not None:
                if type(answer) is not type(request):
                    raise ExtensionError(entry.extension, entry.point.value, TypeError(
                        f"returned a {type(answer).__name__}; return None, a JobChange or a {type(request).__name__}"))
                request = answer
        self.request = request
        return request

    def model_loaded(self, loaded: Any) -> None:
        """The model_loaded hooks, once per model in memory: known by its UNet, which a job's pipeline views
        share with the cached pipeline, so a model evicted and loaded again is new again."""
        if loaded is None:
            return
        key = getattr(loaded.pipeline, "unet", None) or loaded.model
        if key in self._seen_models:
            return
        event = ModelLoaded(loaded.record.name, loaded.record.architecture, loaded.pipeline)
        for entry in self._at(HookPoint.MODEL_LOADED):
            entry.call(event)
        self._seen_models.add(key)  # after the calls: a failed hook runs again next time

    def step(self, pipe: Any, step: int, timestep: Any, latents: Any) -> tuple[Any, bool]:
        """(latents, stop) after the step_end hooks; the latents are the input ones unless a hook changed them."""
        hooks = self._at(HookPoint.STEP_END)
        stop = False
        if not hooks:
            return latents, stop
        scheduler = pipe.scheduler
        sigma = None
        sigmas, index = getattr(scheduler, "sigmas", None), getattr(scheduler, "step_index", None)
        if sigmas is not None and index is not None and index < len(sigmas):
            sigma = float(sigmas[index])
        total = getattr(pipe, "num_timesteps", 0)
        for entry in hooks:
            answer = entry.call(StepEnd(step, total, timestep, sigma, latents, self.request, self.args_of(
                entry.extension)))
            if isinstance(answer, StepChange):
                if answer.latents is not None:
                    if getattr(answer.latents, "shape", None) != latents.shape:
                        raise ExtensionError(entry.extension, entry.point.value, ValueError(
                            f"returned latents of shape {getattr(answer.latents, 'shape', None)}, "
                            f"expected {tuple(latents.shape)}"))
                    latents = answer.latents.to(device=latents.device, dtype=latents.dtype)
                stop = stop or answer.stop
            elif answer is not None:
                raise ExtensionError(entry.extension, entry.point.value, TypeError(
                    f"returned a {type(answer).__name__}; return None or a StepChange"))
        return latents, stop

    def image_saved(self, path: Path, image: Any, infotext: str, mode: str) -> None:
        for entry in self._at(HookPoint.IMAGE_SAVED):
            entry.call(ImageSaved(path, image, infotext, mode))

    def after_job(self, request: Any, result: Any) -> None:
        for entry in self._at(HookPoint.AFTER_JOB):
            entry.call(AfterJob(request, result, self.args_of(entry.extension)))
