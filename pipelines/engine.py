"""The engine: one request in, one result out, for the UI, the API, the CLI and tests.

Every job waits its turn in one queue (:class:`~pipelines.jobs.DeviceQueue`), so two jobs never share a
running pipeline or scheduler; the running job's state is readable for progress bars, and Interrupt and
Skip reach only the jobs of the owner (or task id) that asks. With remote devices attached (``--ray``:
pipelines/cluster) the queue has one slot per engine replica and each job runs on a replica; the images it
saves are written here, so the outputs folder and History are the same whichever replica made them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from pipelines.errors import ValidationError
from pipelines.history import History
from pipelines.hooks import ExtensionRegistry, JobHooks
from pipelines.jobs import DeviceQueue, JobOwner, QueuedJob
from pipelines.jobs.owner import LOCAL
from pipelines.jobs.remote import RemoteDevices
from pipelines.models.loaded import LoadedModel
from pipelines.models.store import ModelStore
from pipelines.modes import extras, img2img, outpaint, txt2img, unconditional, variation
from pipelines.modes.common import JobContext, save_locally, with_vae
from pipelines.modes.memory_recovery import run_with_memory_recovery
from pipelines.modes.refiner import held_refiner
from pipelines.modes.taesd_job import with_taesd
from pipelines.networks.lora import applied_loras
from pipelines.networks.taesd import held_taesd
from pipelines.networks.tags import extract_loras
from pipelines.networks.vae import AUTOMATIC, held_vae
from pipelines.outputs import SaveFn
from pipelines.progress import JobState, ProgressFn, ProgressUpdate, ignore_progress
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
                         "extras": Mode(extras.run, needs_checkpoint=False),
                         "variation": Mode(variation.run, needs_checkpoint=False)}  # its own model (image embedding)


class Engine:
    """Runs generation requests one at a time on the shared model store."""

    def __init__(self, settings: Settings, store: ModelStore, selection: CheckpointSelection,
                 upscalers: UpscalerRegistry, styles: StyleStore | None = None,
                 hooks: ExtensionRegistry | None = None, history: History | None = None) -> None:
        self.settings = settings
        self.hooks = hooks or ExtensionRegistry()  # the extensions' hook points (pipelines/hooks)
        self.history = history  # indexes every image a job saves (None: not recorded, e.g. in engine tests)
        self._job_hooks: JobHooks | None = None  # the running job's, set while it holds the device
        # Interrupt presses per target: an owner, ("task", id), or None for everyone's jobs
        self._interrupts: Counter[JobOwner | tuple[str, str] | None] = Counter()
        self.styles = styles
        self.store = store
        self.selection = selection
        self.upscalers = upscalers
        self.queue = DeviceQueue(settings.max_queued_jobs)
        self.remote: RemoteDevices | None = None  # engine replicas that run the jobs instead (``--ray``)
        self._job_save: SaveFn | None = None  # the running job's image destination (a replica's: the front)

    def attach_remote(self, remote: RemoteDevices | None) -> None:
        """Run every job from now on on ``remote``'s replicas, as many at once as it has (None: here again)."""
        self.remote = remote
        self.queue.set_slots(remote.replicas if remote is not None else 1)
        self.selection.loads_here = remote is None  # a selected checkpoint is loaded by the replicas, not here

    @property
    def state(self) -> JobState | None:
        """The running job (the longest-running one, with replicas), or None when idle."""
        running = self.queue.running
        return running.state if running is not None else None

    def state_for(self, owner: JobOwner | None, task_id: str | None = None) -> JobState | None:
        """The running job ``owner`` (or the holder of ``task_id``) sees: its own when it has one running, else
        the longest-running one (None: idle)."""
        running = self.queue.status(owner, task_id).running
        return running.state if running is not None else None

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        status = self.queue.status()
        return status.waiting + status.running_count

    def interrupts(self, owner: JobOwner | None = None, task_id: str | None = None) -> int:
        """Interrupt presses so far that reach ``owner``'s jobs (or task ``task_id``'s): a script running
        several jobs stops when this changes."""
        if owner is None and task_id is None:  # an in-process caller's: any press stops it, as before owners
            return sum(self._interrupts.values())
        count = self._interrupts[None] + (self._interrupts[owner] if owner is not None else 0)
        return count + (self._interrupts[("task", task_id)] if task_id is not None else 0)

    def owns_running(self, owner: JobOwner | None, task_id: str | None = None) -> bool:
        """Whether a running job is one ``owner`` (or the holder of ``task_id``) may stop."""
        return any(job.matches(owner, task_id) for job in self.queue.running_jobs)

    def _running_matches(self, owner: JobOwner | None, task_id: str | None) -> list[JobState]:
        return [job.state for job in self.queue.running_jobs if job.state is not None and job.matches(owner, task_id)]

    def interrupt(self, owner: JobOwner | None = None, task_id: str | None = None) -> bool:
        """Stop the running job after its current step (its images so far are kept) and take the waiting jobs
        out of the queue, when they are ``owner``'s (or the one ``task_id`` names; both None: everyone's).
        Returns whether the running job was stopped."""
        self._interrupts[("task", task_id) if task_id is not None else owner] += 1
        self.queue.cancel(owner, task_id, reason="interrupted")
        states = self._running_matches(owner, task_id)
        for state in states:
            state.interrupt()
        return bool(states)

    def skip(self, owner: JobOwner | None = None, task_id: str | None = None) -> bool:
        """Cut the current image of ``owner``'s running job short; the rest of its batch goes on."""
        states = self._running_matches(owner, task_id)
        for state in states:
            state.skip()
        return bool(states)

    def cancel_queued(self, owner: JobOwner, reason: str) -> int:
        """Take ``owner``'s waiting jobs out of the queue (the page that asked for them was closed)."""
        return self.queue.cancel(owner, reason=reason)

    def _run_on_checkpoint(self, mode: Mode, request: Any, state: JobState,
                           on_progress: ProgressFn) -> GenerationResult:
        """Hold the checkpoint (and the SDXL refiner, if any), apply the prompts' LoRAs for this job (before any
        prompt is encoded), run the mode."""
        tags = extract_loras(request.prompt, request.negative_prompt).tags
        with self.store.use(request.model or self.selection.current, on_progress) as loaded:
            if unconditional.is_unconditional(loaded.record):  # pixel-space DDPM/DDIM: no VAE, refiner, LoRA or prompt
                return unconditional.run(request, self._job(loaded, state, on_progress))
            return self._run_conditioned(mode, request, state, on_progress, loaded, tags)

    def _run_conditioned(self, mode: Mode, request: Any, state: JobState, on_progress: ProgressFn,
                         loaded: LoadedModel, tags: Any) -> GenerationResult:
        with held_vae(self.store, getattr(request, "sd_vae", AUTOMATIC), loaded, on_progress) as vae, \
                held_taesd(self.store, request, loaded, on_progress) as tiny, \
                held_refiner(self.store, request, loaded, on_progress) as refiner, \
                applied_loras(loaded.pipeline, self.store, tags, loaded.record.architecture,
                              model_name=loaded.record.name) as loras:
            job = self._job(with_vae(loaded, vae.vae) if vae else loaded, state, on_progress)
            job.vae_params.update(vae.infotext() if vae else {})
            with_taesd(job, tiny, request.mode)  # TAESD decode / encode / previews, when the request asks
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
        return JobContext(loaded, state, on_progress, self.settings, self.store, self.upscalers, hooks=hooks,
                          save=self._job_save)

    def generate(self, request: GenerationRequest, *, on_progress: ProgressFn = ignore_progress,
                 extension_args: Mapping[str, Mapping[str, Any]] | None = None, owner: JobOwner | None = None,
                 task_id: str | None = None, save: SaveFn | None = None) -> GenerationResult:
        """Apply the request's styles and the extensions' before_job hooks (``extension_args``: each one's
        section values, from ``ExtensionRegistry.job_args``), validate, wait for the device in the queue
        (``owner``'s job, named ``task_id`` if the client gave one; its place is reported as progress with
        unit "queue"), load the model, run the mode (here, or on a replica when remote devices are attached),
        then the after_job hooks. A failing hook fails this job only (ExtensionError); a full queue refuses it
        at once (QueueFullError). ``save``: where the job's images go instead of this outputs folder (a
        replica's job sends them to the front process)."""
        hooks = self.hooks.for_job(extension_args)
        request = hooks.before_job(self._with_styles(request))
        request.validate()
        mode = MODES[request.mode]
        state = JobState(job=request.mode)
        ticket = QueuedJob(request.mode, owner or LOCAL, task_id, state=state)

        def waiting(ahead: int, total: int) -> None:
            on_progress(ProgressUpdate(job="queue", step=0, total=0, unit="queue",
                                       text=f"waiting for the device: number {ahead} of {total} in the queue"))

        with self.queue.turn(ticket, waiting):
            state.started = time.monotonic()  # the wait in the queue is not the job's time
            try:
                started = time.perf_counter()
                if self.remote is not None:  # on a replica; its images are saved here as they come
                    result = self._run_remote(self.remote, request, state, on_progress, hooks)
                else:
                    self._job_hooks, self._job_save = hooks, save
                    result = (self._run_on_checkpoint(mode, request, state, on_progress) if mode.needs_checkpoint
                              else mode.run(request, self._job(None, state, on_progress)))
                log.info("%s: %d image(s) in %.2fs%s", request.mode, len(result.images),
                         time.perf_counter() - started, " (interrupted)" if result.interrupted else "")
                if self.history is not None:  # before the hooks: a failing hook must not keep saved images out
                    self.history.record_images([*result.images, *filter(None, [result.grid])], mode=request.mode)
                hooks.after_job(request, result)
                return result
            finally:
                if self.remote is None:
                    self._job_hooks = self._job_save = None

    def _run_remote(self, remote: RemoteDevices, request: Any, state: JobState, on_progress: ProgressFn,
                    hooks: JobHooks) -> GenerationResult:
        """Run the job on a replica, on the checkpoint selected here (replicas have selections of their own)."""
        if MODES[request.mode].needs_checkpoint and not getattr(request, "model", None):
            request = replace(request, model=self.selection.current)
        return remote.run(request, state, on_progress, partial(save_locally, self.settings, hooks))
