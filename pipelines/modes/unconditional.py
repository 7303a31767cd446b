"""Unconditional pixel-space generation: a ``UNet2DModel`` (the DDPM paper's released checkpoints, ``google/ddpm-*``)
denoises RGB noise at its own size with the DDPM or DDIM scheduler; no prompt, VAE or guidance is involved.

A txt2img request on such a checkpoint lands here (the engine routes it). The loop is the one diffusers'
``DDPMPipeline`` / ``DDIMPipeline`` run, written out over the pipeline's public components (``unet``,
``scheduler.set_timesteps`` / ``step``) because those pipelines have no step callback: progress, Interrupt and
Skip are checked between steps, as in every other mode. Differences from a text-to-image job, each said in the
result's ``notices`` when the request asked for something else:

- the size is the model's ``sample_size`` (a 32x32 CIFAR-10 model draws 32x32 images); width and height are not used;
- the prompt and negative prompt are not used (the infotext's prompt line is empty); CFG scale does not apply;
- samplers are DDPM (every training step by default: 1000) and DDIM (eta 0, deterministic); others are a 422.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import numpy as np
import torch
from PIL import Image

from pipelines import samplers
from pipelines.errors import UnsupportedModelError, ValidationError
from pipelines.infotext.codec import format_infotext
from pipelines.models.architecture import Architecture
from pipelines.models.refs import ModelRecord
from pipelines.modes.common import (
    JobContext,
    batch_grid,
    batch_seeds,
    generators,
    model_params,
    resolve_seed,
    saved,
)
from pipelines.progress import ProgressUpdate
from pipelines.requests import GenerationRequest, Txt2ImgRequest
from pipelines.results import GeneratedImage, GenerationResult
from pipelines.version import VERSION

DEFAULT_REQUEST_SIZE = (Txt2ImgRequest.width, Txt2ImgRequest.height)  # what a form or API client sends unasked


def is_unconditional(record: ModelRecord | None) -> bool:
    return record is not None and record.architecture is Architecture.UNCONDITIONAL


def native_size(pipe: Any) -> tuple[int, int]:
    """(width, height) the UNet was trained at: its ``sample_size`` (an int, or height and width)."""
    size = pipe.unet.config.sample_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return int(width), int(height)


def default_steps(pipe: Any, sampler: str) -> int:
    """DDPM: every training step (the scheduler's ``num_train_timesteps``); DDIM: 50, as ``DDIMPipeline``."""
    return int(pipe.scheduler.config.num_train_timesteps) if sampler == samplers.DDPM.name else 50


def suggested_settings(record: ModelRecord | None) -> tuple[str, int] | None:
    """(sampler, steps) an unconditional model samples with by default: DDPM over all its training steps (read from
    its scheduler config, without loading it); None for other models. The UI and the CLI start from these."""
    if not is_unconditional(record) or record.path is None:
        return None
    for config in (record.path / "scheduler" / "scheduler_config.json", record.path / "scheduler_config.json"):
        try:
            return samplers.DDPM.name, int(json.loads(config.read_text())["num_train_timesteps"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return samplers.DDPM.name, 1000


def check_request(request: GenerationRequest, ctx: JobContext) -> list[str]:
    """Refuse what an unconditional model cannot do (naming the field); return notices for what it ignores."""
    name = ctx.loaded.record.name
    if request.mode != "txt2img":
        raise UnsupportedModelError(f"{name} is an unconditional pixel-space model: it only generates from noise "
                                    f"(txt2img), it cannot run {request.mode}")
    spec, _ = samplers.resolve(request.sampler_name, request.scheduler)
    if spec.name not in samplers.unconditional_sampler_names():
        raise ValidationError("sampler_name", f"{name} is an unconditional pixel-space model: it samples with "
                              f"{' or '.join(samplers.unconditional_sampler_names())}, not {spec.name!r}")
    for field, used, what in (("enable_hr", getattr(request, "hires", None) is not None, "hires fix"),
                              ("refiner_checkpoint", getattr(request, "refiner", None) is not None, "a refiner"),
                              ("subseed_strength", request.variation.active, "variation seeds")):
        if used:
            raise ValidationError(field, f"{name} is an unconditional pixel-space model: {what} is not available")
    notices = []
    if request.prompt.strip() or request.negative_prompt.strip():
        notices.append(f"{name} is an unconditional model: the prompt is not used.")
    size = native_size(ctx.loaded.pipeline)
    asked = (request.width, request.height)
    if asked not in (size, DEFAULT_REQUEST_SIZE):
        notices.append(f"{name} draws {size[0]}x{size[1]} images (its sample_size); {asked[0]}x{asked[1]} is not "
                       "used.")
    return notices


def infotext_params(request: GenerationRequest, ctx: JobContext, seed: int, pos: int,
                    size: tuple[int, int]) -> dict[str, Any]:
    """A1111's keys that apply: no CFG scale, schedule type or prompt settings."""
    params: dict[str, Any] = {"Steps": request.steps, "Sampler": samplers.resolve(request.sampler_name)[0].name,
                              "Seed": seed, "Size": f"{size[0]}x{size[1]}", **model_params(ctx)}
    if params["Sampler"] == "DDIM":
        params["Eta DDIM"] = 0.0
    params["RNG"] = "CPU"
    if request.batch_size > 1:
        params.update({"Batch size": request.batch_size, "Batch pos": pos})
    params.update(ctx.hooks.infotext if ctx.hooks else {})
    params["Version"] = VERSION
    return params


def to_pil(sample: torch.Tensor) -> list[Image.Image]:
    """[-1, 1] RGB tensors (N, 3, H, W) as 8-bit images."""
    array = (sample.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(np.round(a * 255).astype(np.uint8)) for a in array]


def denoise(ctx: JobContext, scheduler: Any, seeds: list[int], steps: int, size: tuple[int, int],
            label: str) -> torch.Tensor:
    """One batch: noise from each image's own CPU generator, then the scheduler's steps; stops after a step when
    the job is interrupted or skipped (the image so far is kept, as A1111 does)."""
    unet = ctx.loaded.pipeline.unet
    gens = generators(seeds)
    shape = (unet.config.in_channels, size[1], size[0])
    sample = torch.stack([torch.randn(shape, generator=g) for g in gens]).to(ctx.loaded.device, unet.dtype)
    scheduler.set_timesteps(steps, device=ctx.loaded.device)
    extra = {"eta": 0.0} if "eta" in inspect.signature(scheduler.step).parameters else {}  # DDIM: deterministic
    for done, t in enumerate(scheduler.timesteps, start=1):
        noise_pred = unet(sample, t).sample
        sample = scheduler.step(noise_pred, t, sample, generator=gens, **extra).prev_sample
        ctx.job.sampling_step, ctx.job.sampling_steps = done, steps
        ctx.on_progress(ProgressUpdate(ctx.job.job, done, steps, "steps", label))
        if ctx.job.interrupted or ctx.job.take_skip():
            break
    return sample


@torch.inference_mode()
def run(request: Txt2ImgRequest, ctx: JobContext) -> GenerationResult:
    # 1. Check inputs: the request's own fields, then what this family runs
    request.validate()
    notices = check_request(request, ctx)
    pipe = ctx.loaded.pipeline
    size = native_size(pipe)
    spec, schedule = samplers.resolve(request.sampler_name, request.scheduler)
    # 2. Seeds: image i of batch k has seed + k * batch_size + i (A1111), each from its own CPU generator
    first_seed = resolve_seed(request.seed)
    images: list[GeneratedImage] = []
    for iteration, seeds in batch_seeds(ctx.job, request, first_seed):
        # 3. A scheduler of the job's own, from the model's config (DDPM or DDIM)
        scheduler = samplers.build_scheduler(pipe.scheduler.config, spec, schedule)
        # 4. Denoising loop: progress, Interrupt and Skip between steps
        sample = denoise(ctx, scheduler, seeds, request.steps, size, f"Batch {iteration + 1}/{request.n_iter}")
        # 5. Pixels out, each image saved with its infotext
        for pos, (image, seed) in enumerate(zip(to_pil(sample), seeds, strict=True)):
            text = format_infotext("", "", infotext_params(request, ctx, seed, pos, size))
            images.append(saved(image, seed, text, request, ctx))
    info = {"prompt": "", "negative_prompt": "", "seed": first_seed, "all_seeds": [img.seed for img in images],
            "subseed": -1, "all_subseeds": [-1] * len(images), "width": size[0], "height": size[1],
            "sampler_name": spec.name, "scheduler": schedule.label, "cfg_scale": request.cfg_scale,
            "steps": request.steps, "batch_size": request.batch_size, "sd_model_name": ctx.loaded.record.name,
            "sd_model_hash": model_params(ctx)["Model hash"], "sd_vae_name": None, "sd_vae_hash": None,
            "infotexts": [img.infotext for img in images], "version": VERSION}
    return GenerationResult(images=images, info=info, interrupted=ctx.job.interrupted, notices=tuple(notices),
                            grid=batch_grid(request, ctx, images))
