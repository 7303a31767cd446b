"""Pieces every mode shares: per-job pipeline views, seeds, the step callback, infotext keys."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from pipelines import samplers
from pipelines.models.manager import LoadedModel
from pipelines.preview import LatentPreviewer, fit_previewer
from pipelines.progress import JobState, ProgressFn, ProgressUpdate
from pipelines.requests import MAX_SEED
from pipelines.settings import Settings

VERSION = "Atelier 0.1.0"


@dataclass
class JobContext:
    """What the engine hands a mode: the model held for this job and where to report."""

    loaded: LoadedModel
    job: JobState
    on_progress: ProgressFn
    settings: Settings


def job_pipeline(base: Any, scheduler: Any, cls: type | None = None) -> Any:
    """A pipeline object for one job: the loaded modules, a scheduler of its own.

    Building it is a plain constructor call (about a millisecond); no weights are
    copied, and per-call state such as ``_interrupt`` never touches the cached pipeline.
    """
    cls = cls or type(base)
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in base.components.items() if k in params}
    kwargs.update({k: base.config[k] for k in params if k in base.config and k not in base.components})
    kwargs["scheduler"] = scheduler
    view = cls(**kwargs)
    view.set_progress_bar_config(disable=True)
    return view


def resolve_seed(seed: int) -> int:
    return seed if seed >= 0 else random.randint(0, MAX_SEED)


def generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per image, so each image depends only on its own seed and
    the same seed gives the same noise on every device."""
    return [torch.Generator("cpu").manual_seed(s) for s in seeds]


def previewer(loaded: LoadedModel) -> LatentPreviewer:
    if "previewer" not in loaded.extras:
        loaded.extras["previewer"] = fit_previewer(loaded.pipeline.vae)
    return loaded.extras["previewer"]


def step_callback(ctx: JobContext, *, steps: int, size: tuple[int, int], text: str) -> Callable:
    """diffusers ``callback_on_step_end``: progress, live previews, interrupt and skip."""
    every = ctx.settings.live_preview_every
    job = ctx.job

    def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        done = step + 1
        job.sampling_step, job.sampling_steps = done, steps
        preview = None
        if every > 0 and done % every == 0 and done < steps:
            preview = previewer(ctx.loaded)(tensors["latents"], size)
            job.current_preview = preview
        ctx.on_progress(ProgressUpdate(ctx.job.job, done, steps, "steps", text, preview))
        if job.interrupted or job.take_skip():
            pipe._interrupt = True  # diffusers' documented way to stop the denoising loop early
        return tensors

    return on_step_end


def sampler_params(sampler_name: str, scheduler: str) -> tuple[samplers.SamplerSpec, samplers.Schedule]:
    return samplers.resolve(sampler_name, scheduler)


def model_params(loaded: LoadedModel) -> dict[str, Any]:
    return {"Model hash": loaded.record.short_hash, "Model": loaded.record.name}
