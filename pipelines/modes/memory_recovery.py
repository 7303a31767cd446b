"""Out-of-memory recovery around one job on a checkpoint.

The job's memory is estimated first (:mod:`pipelines.models.job_memory`); when the device is short, a
lower-memory mode (:mod:`pipelines.models.low_memory`) is chosen up front. A job that still runs out of memory
is run once more in the next mode, after its memory is freed; the result says so in ``notices``. A second
failure, or one with no lower mode left, is a clear :class:`~pipelines.errors.OutOfMemoryError`. Every mode
is undone when the job ends, so the next job on the cached model runs as before.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from pipelines.errors import OutOfMemoryError
from pipelines.models.job_memory import choose_level, estimate_job
from pipelines.models.loaded import LoadedModel
from pipelines.models.low_memory import OFFLOADED, MemoryLevel, levels_for, lowered, mark_offloaded
from pipelines.models.memory import fmt, vram_free_total
from pipelines.models.memory_budget import Tier
from pipelines.modes.common import JobContext, resolve_seed
from pipelines.progress import ProgressUpdate
from pipelines.results import GenerationResult
from pipelines.upscalers.tiling import is_out_of_memory

log = logging.getLogger(__name__)

ModeRun = Callable[[Any, JobContext], GenerationResult]


def device_free_bytes(job: JobContext) -> int:
    """Bytes the job can use on its device now: what the store's probe reads as free, and on CUDA what
    PyTorch's allocator holds unused (it hands that out again before asking the driver)."""
    device = job.loaded.device
    free = job.store.free_bytes(Tier.DEVICE) if job.store is not None else vram_free_total(device)[0]
    if device.type == "cuda":
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return free


def free_memory(device: torch.device) -> None:
    """Give back what a failed attempt left: its tensors (once nothing refers to them) and the allocator's cache."""
    gc.collect()
    if device.type == "cuda":
        before = torch.cuda.memory_reserved(device)
        torch.cuda.empty_cache()
        log.info("out of memory: freed %s of cached device memory; %s free now",
                 fmt(before - torch.cuda.memory_reserved(device)), fmt(vram_free_total(device)[0]))


def _short(exc: BaseException) -> str:
    """The gist of an allocator's message: CUDA's is one long line ("CUDA out of memory. Tried to allocate 20.00
    GiB. GPU 0 has a total capacity of ..."); its first two sentences say what a user needs."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    gist = ". ".join(text.split(". ")[:2]).rstrip(".")
    return gist if len(gist) <= 160 else gist[:157] + "..."


def _run_catching(run: ModeRun, request: Any, job: JobContext) -> GenerationResult | str:
    """The job's result, or the out-of-memory message when it ran out (any other error is raised)."""
    try:
        return run(request, job)
    except RuntimeError as exc:  # torch.OutOfMemoryError is one; MPS and CPU allocators raise plain ones
        if not is_out_of_memory(exc):
            raise
        reason = _short(exc)
    # Out of the except block: the exception, its traceback and the frames holding the failed tensors are gone.
    return reason


def _attempt(run: ModeRun, request: Any, job: JobContext, level: MemoryLevel) -> tuple[GenerationResult | str, str]:
    """The job's result (or its out-of-memory message) at ``level``, and the savings it ran with."""
    models = [m for m in (job.loaded, job.refiner) if m is not None]
    with lowered(models, level) as mode:
        outcome = _run_catching(run, request, job)
    for model in mode.kept_offloaded:
        _keep_offloaded(job, model)
    if OFFLOADED in mode.savings and job.store is not None:
        job.store.cache.remeasure()  # the models went to the CPU and back: their tensors are new storages
    return outcome, mode.label


def _keep_offloaded(job: JobContext, model: LoadedModel) -> None:
    """Mark ``model`` (and the cached model it is a job's view of) as running offloaded from now on."""
    why = "kept offloaded: after running out of memory the device had no room to take it back"
    mark_offloaded(model, why)
    cached = job.store.loaded(model.record) if job.store is not None else None
    if cached is not None and cached is not model:
        mark_offloaded(cached, why)


def _start_again(job: JobContext, text: str, steps: int) -> None:
    state = job.job
    state.job_no, state.sampling_step, state.current_preview, state.textinfo = 0, 0, None, text
    job.on_progress(ProgressUpdate(state.job, 0, steps, "steps", text))


def run_with_memory_recovery(run: ModeRun, request: Any, job: JobContext, *,
                             free_bytes: int | None = None) -> GenerationResult:
    """Run ``run(request, job)`` in the mode the job's memory estimate asks for; on out-of-memory, once more in
    the next lower-memory mode. ``free_bytes``: the device's free memory (None: read it now)."""
    # 1. The seed drawn now, so a retry makes the same images
    if getattr(request, "seed", 0) == -1:
        request = replace(request, seed=resolve_seed(request.seed))
    # 2. Estimate the job's bytes; pick the lowest-saving mode that fits the free memory
    levels = levels_for(job.loaded)
    estimate = estimate_job(request, job.loaded)
    free = device_free_bytes(job) if free_bytes is None else free_bytes
    level = choose_level(estimate, free, levels)
    log.info("job memory: %s -> %s", estimate.explain(free), level.label)
    # 3. Run; on out-of-memory, free what the attempt held and run once more in the next mode
    outcome, savings = _attempt(run, request, job, level)
    notices: list[str] = []
    if level > levels[0]:
        notices.append(f"Low on memory (the job needs about {fmt(estimate.needed(levels[0]))}, "
                       f"{fmt(free)} is free): ran with {savings}.")
    if isinstance(outcome, str):
        free_memory(job.loaded.device)
        lower = [candidate for candidate in levels if candidate > level]
        if not lower or job.job.interrupted:
            raise OutOfMemoryError(_failure(outcome, level, savings, job, retried=False))
        log.warning("out of memory with %s (%s); retrying with %s", savings, outcome, lower[0].label)
        first_failure, level = outcome, lower[0]
        _start_again(job, f"Retrying with lower memory ({level.label})", request.steps)
        outcome, savings = _attempt(run, request, job, level)
        if isinstance(outcome, str):
            free_memory(job.loaded.device)
            raise OutOfMemoryError(_failure(outcome, level, savings, job, retried=True))
        notices.append(f"Ran out of memory ({first_failure}); the job was run again with {savings}.")
    return replace(outcome, notices=(*outcome.notices, *notices)) if notices else outcome


def _failure(reason: str, level: MemoryLevel, savings: str, job: JobContext, *, retried: bool) -> str:
    """The error a user reads when the job could not be made to fit."""
    where = "out of memory" if level is MemoryLevel.NORMAL else f"out of memory even with {savings}"
    missing = ""
    if level < MemoryLevel.OFFLOAD and job.loaded.device.type == "cpu":
        missing = " (CPU offload needs an accelerator)"
    if job.job.interrupted and not retried:
        missing += " (not retried: the job was interrupted)"
    return f"{where}{missing}; try a smaller size or batch size [{reason}]"
