"""The engine: one request in, one result out, for the UI, the API, the CLI and tests.

All device work runs under one lock, so two jobs never share a running
pipeline or scheduler; the running job's state is readable for progress bars
and can be interrupted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pipelines.errors import ValidationError
from pipelines.hooks import ExtensionRegistry, JobHooks
from pipelines.models.loaded import LoadedModel
from pipelines.models.store import ModelStore
from pipelines.modes import extras, img2img, outpaint, txt2img
from pipelines.modes.common import JobContext, with_vae
from pipelines.modes.memory_recovery import run_with_memory_recovery
from pipelines.modes.refiner import held_refiner
from pipelines.networks.lora import applied_loras
from pipelines.networks.tags import extract_loras
from pipelines.networks.vae import AUTOMATIC, held_vae
from pipelines.progress import JobState, ProgressFn, ignore_progress
from pipelines.prompts.styles import StyleStore
from pipelines.requests import GenerationRequest
from pipelines.results import GenerationResult
from pipelines.selection import CheckpointSelection
from pipelines.settings import Settings
from pipelines.upscalers.registry import UpscalerRegistry

log = logging.getLogger(__name__)

ModeRunner = Callable[[Any, JobContext], GenerationResult]


@dataclass(frozen=True)
class Mode:
    """How the engine runs one kind of request."""

    run: ModeRunner
    needs_checkpoint: bool = True  # False: the mode loads what it needs itself (e.g. upscalers)


MODES: dict[str, Mode] = {"txt2img": Mode(txt2img.run), "img2img": Mode(img2img.run), "outpaint": Mode(outpaint.run),
                         "extras": Mode(extras.run, needs_checkpoint=False)}


class Engine:
    """Runs generation requests one at a time on the shared model store."""

    def __init__(self, settings: Settings, store: ModelStore, selection: CheckpointSelection,
                 upscalers: UpscalerRegistry, styles: StyleStore | None = None,
                 hooks: ExtensionRegistry | None = None) -> None:
        self.settings = settings
        self.hooks = hooks or ExtensionRegistry()  # the extensions' hook points (pipelines/hooks)
        self._job_hooks: JobHooks | None = None  # the running job's, set while it holds the device
        self.interrupts = 0  # Interrupt presses so far: a script running several jobs stops when it changes
        self.styles = styles
        self.store = store
        self.selection = selection
        self.upscalers = upscalers
        self._device_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._state: JobState | None = None
        self._pending = 0

    @property
    def state(self) -> JobState | None:
        """The running job, or None when idle."""
        return self._state

    @property
    def pending(self) -> int:
        return self._pending

    def interrupt(self) -> bool:
        """Stop the running job after its current step; its images so far are kept."""
        self.interrupts += 1
        state = self._state
        if state is not None:
            state.interrupt()
        return state is not None

    def skip(self) -> bool:
        """Cut the current image short; the rest of the batch goes on."""
        state = self._state
        if state is not None:
            state.skip()
        return state is not None

    def _run_on_checkpoint(self, mode: Mode, request: Any, state: JobState,
                           on_progress: ProgressFn) -> GenerationResult:
        """Hold the checkpoint (and the SDXL refiner, if any), apply the prompts' LoRAs for this job (before any
        prompt is encoded), run the mode."""
        tags = extract_loras(request.prompt, request.negative_prompt).tags
        with self.store.use(request.model or self.selection.current, on_progress) as loaded, \
                held_vae(self.store, getattr(request, "sd_vae", AUTOMATIC), loaded, on_progress) as vae, \
                held_refiner(self.store, request, loaded, on_progress) as refiner, \
                applied_loras(loaded.pipeline, self.store, tags, loaded.record.architecture,
                              model_name=loaded.record.name) as loras:
            job = self._job(with_vae(loaded, vae.vae) if vae else loaded, state, on_progress)
            job.vae_params.update(vae.infotext() if vae else {})
            job.refiner = refiner
            job.prompt_params.update(loras.infotext())
            return run_with_memory_recovery(mode.run, request, job)  # a lower-memory retry on OOM

    def _with_styles(self, request: Any) -> Any:
        """The request with its ``styles`` applied to both prompts (A1111's styles.csv); unknown names are refused."""
        styles = getattr(request, "styles", ())
        if not styles:
            return request
        if self.styles is None or not isinstance(styles, tuple):
            raise ValidationError("styles", "styles are not available here")
        prompt, negative = self.styles.apply(request.prompt, request.negative_prompt, styles)
        return replace(request, prompt=prompt, negative_prompt=negative, styles=())

    def _job(self, loaded: LoadedModel | None, state: JobState, on_progress: ProgressFn) -> JobContext:
        hooks = self._job_hooks
        if hooks is not None:
            hooks.model_loaded(loaded)
        return JobContext(loaded, state, on_progress, self.settings, self.store, self.upscalers, hooks=hooks)

    def generate(self, request: GenerationRequest, *, on_progress: ProgressFn = ignore_progress,
                 extension_args: Mapping[str, Mapping[str, Any]] | None = None) -> GenerationResult:
        """Apply the request's styles and the extensions' before_job hooks (``extension_args``: each one's
        section values, from ``ExtensionRegistry.job_args``), validate, wait for the device, load the model,
        run the mode, then the after_job hooks. A failing hook fails this job only (ExtensionError)."""
        hooks = self.hooks.for_job(extension_args)
        request = hooks.before_job(self._with_styles(request))
        request.validate()
        mode = MODES[request.mode]
        with self._state_lock:
            self._pending += 1
        try:
            with self._device_lock:
                state = JobState(job=request.mode)
                self._state, self._job_hooks = state, hooks
                try:
                    started = time.perf_counter()
                    if mode.needs_checkpoint:
                        result = self._run_on_checkpoint(mode, request, state, on_progress)
                    else:
                        result = mode.run(request, self._job(None, state, on_progress))
                    log.info("%s: %d image(s) in %.2fs%s", request.mode, len(result.images),
                             time.perf_counter() - started, " (interrupted)" if result.interrupted else "")
                    hooks.after_job(request, result)
                    return result
                finally:
                    self._state, self._job_hooks = None, None
        finally:
            with self._state_lock:
                self._pending -= 1
