"""The SDXL refiner (A1111 1.6+): the job's checkpoint denoises the first ``switch_at`` of the schedule,
the refiner checkpoint the rest, on the same latents.

This is diffusers' documented "ensemble of expert denoisers": the base pass runs with
``denoising_end=switch_at`` and ``output_type="latent"``, then ``StableDiffusionXLImg2ImgPipeline`` on the
refiner's modules continues with ``denoising_start=switch_at`` (no noise added). The split is taken on
the schedule's timesteps (every timestep at or above ``(1 - switch_at) * 1000`` is the base's), so with
20 steps and 0.8 the base runs 16 steps and the refiner 4, as in A1111. Both passes use the job's
sampler on the base's scheduler config, so the refiner's steps are the rest of the same schedule; its
prompt schedule (prompt editing) is read on the same timeline, through the refiner's own text encoder.

A refiner is either the SDXL refiner model or any SDXL checkpoint (A1111 allows both); both must share
SDXL's latent space. SD 1.x/2.x jobs are refused: diffusers' SD pipelines cannot start mid-schedule.
The job's LoRAs apply to the base only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from pipelines import samplers
from pipelines.errors import ModelNotFoundError, ValidationError
from pipelines.lazy_diffusers import diffusers_attr
from pipelines.models.architecture import Architecture
from pipelines.models.loaded import LoadedModel
from pipelines.models.refs import ModelRecord
from pipelines.models.store import ModelStore
from pipelines.modes.common import JobContext, SecondPass, generators, job_conditioning, job_pipeline, step_callback
from pipelines.modes.hires import decode_latents
from pipelines.progress import ProgressFn
from pipelines.requests import GenerationRequest, Refiner

REFINER_PIPELINE = "StableDiffusionXLImg2ImgPipeline"


def _label(record: ModelRecord) -> str:
    return record.kind.label if record.kind is not None else "an unknown kind of model"


def check_pair(base: ModelRecord, refiner: ModelRecord) -> None:
    """Refuse a refiner that cannot take over from ``base``, naming both."""
    if base.kind is not None and base.kind.refiner:
        raise ValidationError("model", f"{base.name} is an SDXL refiner: it only takes over the last steps of a "
                              "job; pick an SDXL checkpoint as the model and this one as the Refiner")
    if base.architecture is not Architecture.SDXL:
        raise ValidationError("refiner_checkpoint", f"{refiner.name} ({_label(refiner)}) cannot take over from "
                              f"{base.name} ({_label(base)}): the refiner runs on SDXL jobs only")
    if refiner.architecture is not Architecture.SDXL or (refiner.kind is not None and refiner.kind.inpainting):
        raise ValidationError("refiner_checkpoint", f"{refiner.name} ({_label(refiner)}) cannot take over from "
                              f"{base.name} ({_label(base)}): a refiner must be an SDXL model (same latent space, "
                              "not inpainting)")


@contextmanager
def held_refiner(store: ModelStore, request: GenerationRequest, base: LoadedModel,
                 on_progress: ProgressFn) -> Iterator[LoadedModel | None]:
    """Hold the request's refiner through the store for the job (None when it has none, or never switches)."""
    refiner: Refiner | None = getattr(request, "refiner", None)
    if refiner is None or not refiner.active:
        yield None
        return
    try:
        record = store.resolve(refiner.checkpoint)
    except ModelNotFoundError as exc:
        raise ValidationError("refiner_checkpoint", str(exc)) from exc
    if record.kind is not None:  # known before loading (a Hub repo not downloaded yet is checked once loaded)
        check_pair(base.record, record)
    with store.use(record, on_progress) as loaded:
        check_pair(base.record, loaded.record)
        yield loaded


def infotext_params(request: GenerationRequest, ctx: JobContext) -> dict[str, Any]:
    """``Refiner`` and ``Refiner switch at`` when the refiner took part in the job."""
    refiner = getattr(request, "refiner", None)
    if refiner is None or ctx.refiner is None:
        return {}
    return Refiner.infotext_params(ctx.refiner.record.title, refiner.switch_at)


@dataclass(frozen=True)
class Split:
    """Where the schedule switches models, in UNet evaluations (the prompt timeline) and sampling steps (the bar)."""

    refiner_start: int  # the refiner's first evaluation in the whole schedule
    refiner_evaluations: int  # evaluations the refiner runs (0: nothing left to refine)
    refiner_steps: int  # sampling steps it reports


def split_schedule(request: GenerationRequest, scheduler_config: Any, switch_at: float) -> Split:
    """The split diffusers makes: the base keeps the timesteps at or above the cutoff (``denoising_end``), the
    refiner runs those below (``denoising_start``), plus one for a second-order sampler left mid-step."""
    spec, schedule = samplers.resolve(request.sampler_name, request.scheduler)
    scheduler = samplers.build_scheduler(scheduler_config, spec, schedule)
    scheduler.set_timesteps(request.steps)
    cutoff = int(round(scheduler.config.num_train_timesteps * (1 - switch_at)))
    evaluations = len(scheduler.timesteps)
    refiner = int((scheduler.timesteps < cutoff).sum())
    if refiner and scheduler.order == 2 and refiner % 2 == 0:
        refiner += 1
    steps = min(request.steps, math.ceil(refiner / scheduler.order))
    return Split(evaluations - refiner, refiner, steps)


@dataclass(frozen=True)
class RefinerPlan:
    """What a job with a refiner changes: the base pass's extra call arguments, and the refiner's pass."""

    base_kwargs: dict[str, Any]
    base_steps: int  # sampling steps the base reports before the switch
    steps: int  # sampling steps the refiner reports on the job's step bar
    run: Callable[[Any, Any, list[int], str], tuple[Any, list[Any]]]  # -> (refiner pipe, images or latents)

    def then(self, after: SecondPass | None) -> SecondPass:
        """The refiner's pass, followed by ``after`` (hires fix) on its output."""
        def run(first_pipe: Any, latents: Any, seeds: list[int], label: str) -> list[Any]:
            pipe, output = self.run(first_pipe, latents, seeds, label)
            return after.run(pipe, output, seeds, label) if after is not None else output

        return SecondPass(steps=self.steps + (after.steps if after else 0), run=run)


def plan(request: Any, ctx: JobContext, *, output_type: str, later_steps: int = 0) -> RefinerPlan | None:
    """The refiner's part of a txt2img job (None without one); its output is ``output_type`` ("pil", or
    "latent" for a latent hires fix). ``later_steps``: steps of passes after it (hires fix), for the step bar."""
    if ctx.refiner is None:
        return None
    # 1. Where the schedule switches; the bar ends at the job's steps, whatever the sampler's order
    switch_at = float(request.refiner.switch_at)
    base = ctx.loaded.pipeline
    split = split_schedule(request, base.scheduler.config, switch_at)
    spec, schedule = samplers.resolve(request.sampler_name, request.scheduler)
    base_steps = request.steps - split.refiner_steps
    # 2. The refiner's conditioning through its own text encoder, encoded once, read from the switch on
    refiner_pipe = ctx.refiner.pipeline
    conditioning = replace(job_conditioning(ctx, refiner_pipe, request, prompt=request.prompt,
                                            negative_prompt=request.negative_prompt, steps=request.steps),
                           start=split.refiner_start)
    total = request.steps + later_steps
    cls = diffusers_attr(REFINER_PIPELINE)

    def run(first_pipe: Any, latents: Any, seeds: list[int], label: str) -> tuple[Any, list[Any]]:
        # 3. A base pass cut short (interrupt, skip), or nothing left to refine: kept as it is
        if first_pipe.interrupt or ctx.job.interrupted or not split.refiner_evaluations:
            return first_pipe, latents if output_type == "latent" else decode_latents(first_pipe, latents)
        # 4. The rest of the schedule on the refiner's modules, on a pipeline view of its own; a job's SD VAE
        #    (pipelines/networks/vae.py) decodes the refined latents too, as A1111 applies it to the model that runs
        vae = {"vae": base.vae} if ctx.vae_params else {}
        pipe = job_pipeline(refiner_pipe, samplers.build_scheduler(base.scheduler.config, spec, schedule), cls=cls,
                            **vae)
        callback = step_callback(ctx, steps=total, size=(request.width, request.height), text=f"{label} · refiner",
                                 offset=base_steps, conditioning=conditioning)
        output = pipe(
            **conditioning.call_kwargs(len(seeds)),
            image=latents,
            num_inference_steps=request.steps,
            denoising_start=switch_at,
            guidance_scale=request.cfg_scale,
            generator=generators(seeds),
            output_type=output_type,
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents", *conditioning.tensor_inputs],
        )
        return pipe, output.images

    return RefinerPlan({"denoising_end": switch_at, "output_type": "latent"}, base_steps, split.refiner_steps, run)
