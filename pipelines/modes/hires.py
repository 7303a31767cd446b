"""Hires fix (A1111's two-pass txt2img): txt2img at the base size, upscale, then img2img at the target size.

Each batch runs both passes before its images are saved:

- with a latent upscale mode ("Latent", "Latent (bicubic)", ...) the first pass hands over its
  latents, which are resized directly and denoised again; nothing is decoded in between;
- with any other upscaler (Lanczos, Nearest, model upscalers) the first pass is decoded, upscaled
  as an image, cut to the target size and encoded again by the img2img pipeline.

The second pass uses the same seeds as the first (as A1111), runs exactly ``Hires steps`` denoising
steps (the request's steps when 0), and reports its steps after the first pass's on one step bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from PIL import Image

from pipelines import samplers
from pipelines.errors import GenerationInterrupted, ValidationError
from pipelines.imaging.latent_upscale import LATENT_UPSCALE_MODES, is_latent_mode, upscale_latents
from pipelines.modes.common import (
    JobContext,
    SecondPass,
    base_params,
    generators,
    job_conditioning,
    job_pipeline,
    run_batches,
    step_callback,
    tail_params,
    variation_noise,
)
from pipelines.modes.img2img import img2img_class
from pipelines.prompts.conditioning import Conditioning
from pipelines.requests import Refiner, Txt2ImgRequest
from pipelines.results import GenerationResult


def upscaler_names(ctx: JobContext) -> list[str]:
    """Every name ``hr_upscaler`` accepts: the latent modes, then the upscalers (Lanczos, Nearest, models)."""
    return [*LATENT_UPSCALE_MODES, *(ctx.upscalers.names() if ctx.upscalers is not None else [])]


def check_upscaler(name: str, ctx: JobContext) -> None:
    names = upscaler_names(ctx)
    if name not in names:
        raise ValidationError("hr_upscaler", f"no upscaler named {name!r}; one of: {', '.join(names)}")


def schedule_length(steps: int, strength: float) -> int:
    """The ``num_inference_steps`` for which diffusers' img2img runs exactly ``steps`` steps at ``strength``
    (it runs ``int(num_inference_steps * strength)`` of them)."""
    total = max(steps, math.ceil(steps / strength))
    while int(total * strength) < steps:
        total += 1
    while total > steps and int((total - 1) * strength) >= steps:
        total -= 1
    return total


def infotext_params(request: Txt2ImgRequest, ctx: JobContext, seed: int, batch_pos: int) -> dict:
    # A1111's order: Size stays the first pass's; "Denoising strength" after Model, the hires keys before Version
    # the refiner's keys (its first pass) follow them, where A1111 adds them while sampling
    refiner_keys = {} if ctx.refiner is None else Refiner.infotext_params(ctx.refiner.record.title,
                                                                         request.refiner.switch_at)
    return {**base_params(request, ctx, seed), "Denoising strength": request.hires.denoising_strength,
            **tail_params(request, ctx, batch_pos, extra={**request.hires.infotext_params(request), **refiner_keys})}


def decode_latents(pipe: Any, latents: torch.Tensor) -> list[Image.Image]:
    """PIL images from first-pass latents (the latent path's first pass, when it was cut short)."""
    vae = pipe.vae
    config = vae.config
    latents = latents.to(vae.device, vae.dtype)
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is not None and std is not None:  # SDXL-style VAEs normalise their latents
        shape = (1, config.latent_channels, 1, 1)
        latents = latents * torch.tensor(std).view(shape).to(latents) / config.scaling_factor \
            + torch.tensor(mean).view(shape).to(latents)
    else:
        latents = latents / config.scaling_factor
    return pipe.image_processor.postprocess(vae.decode(latents, return_dict=False)[0], output_type="pil")


def centre_crop_latents(latents: torch.Tensor, size: tuple[int, int], cell: int) -> torch.Tensor:
    """The centre ``size`` (pixels) of ``latents``, cut on whole latent cells."""
    cut_x = latents.shape[3] - size[0] // cell
    cut_y = latents.shape[2] - size[1] // cell
    rows = slice(cut_y // 2, latents.shape[2] - (cut_y + 1) // 2)
    cols = slice(cut_x // 2, latents.shape[3] - (cut_x + 1) // 2)
    return latents[:, :, rows, cols]


def upscale_image(image: Image.Image, request: Txt2ImgRequest, ctx: JobContext) -> Image.Image:
    """One decoded first-pass image through the named upscaler, resized to cover and cut to the target."""
    hires = request.hires
    cover = hires.upscale_size(request.width, request.height)
    target = hires.target_size(request.width, request.height)
    scale = max(cover[0] / image.width, cover[1] / image.height)
    upscaled = ctx.upscalers.upscale(image, scale, hires.hr_upscaler, should_stop=lambda: ctx.job.interrupted)
    if upscaled.size != cover:
        upscaled = upscaled.resize(cover, Image.Resampling.LANCZOS)
    left, top = (cover[0] - target[0]) // 2, (cover[1] - target[1]) // 2
    return upscaled.crop((left, top, left + target[0], top + target[1]))


def second_pass(request: Txt2ImgRequest, ctx: JobContext, cls: type, conditioning: Conditioning, first_pipe: Any,
                first: Any, seeds: list[int], label: str) -> list[Image.Image]:
    """Upscale one batch's first pass and denoise it again at the target size."""
    hires = request.hires
    latent = is_latent_mode(hires.hr_upscaler)
    # 1. A first pass cut short (interrupt or skip) is kept as it is, as A1111 does
    if first_pipe.interrupt or ctx.job.interrupted:
        return decode_latents(first_pipe, first) if latent else first
    # 2. Upscale: latents directly, or the decoded images through the upscaler
    target = hires.target_size(request.width, request.height)
    if latent:
        cover = hires.upscale_size(request.width, request.height)
        cell = first_pipe.vae_scale_factor
        init = centre_crop_latents(upscale_latents(first, *cover, hires.hr_upscaler, vae_scale_factor=cell),
                                   target, cell)
    else:
        try:
            init = [upscale_image(image, request, ctx) for image in first]
        except GenerationInterrupted:  # stopped between an upscaler model's tiles: keep the first pass
            return first
    # 3. img2img at the target size on a pipeline view of its own, with the hires sampler and the same seeds
    base = ctx.loaded.pipeline
    spec, schedule = samplers.resolve(hires.sampler_name(request), hires.scheduler(request))
    pipe = job_pipeline(base, samplers.build_scheduler(base.scheduler.config, spec, schedule), cls=cls)
    steps = hires.steps(request.steps)
    callback = step_callback(ctx, steps=request.steps + steps, size=target, text=f"{label} · hires fix",
                             offset=request.steps, conditioning=conditioning)
    output = pipe(
        **conditioning.call_kwargs(len(seeds)),
        image=init,
        strength=hires.denoising_strength,
        num_inference_steps=schedule_length(steps, hires.denoising_strength),
        guidance_scale=request.cfg_scale,
        generator=generators(seeds),
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", *conditioning.tensor_inputs],
    )
    return output.images


@torch.inference_mode()
def run(request: Txt2ImgRequest, ctx: JobContext, refine: Callable[..., Any] | None = None) -> GenerationResult:
    """``refine(output_type=, later_steps=)``: the SDXL refiner's plan for the first pass (modes/refiner.py)."""
    # 1. Check inputs: the request, the upscaler's name, an img2img pipeline for the loaded model
    request.validate()
    check_upscaler(request.hires.hr_upscaler, ctx)
    cls = img2img_class(ctx.loaded.pipeline)
    # 2. The second pass each batch runs before its images are saved, with its own prompt schedule (encoded once)
    prompt, negative = request.hires.prompts(request)
    steps = request.hires.steps(request.steps)
    conditioning = job_conditioning(ctx, ctx.loaded.pipeline, request, prompt=prompt, negative_prompt=negative,
                                    steps=steps, first_pass_steps=request.steps)
    hires_pass = SecondPass(steps=steps, run=partial(second_pass, request, ctx, cls, conditioning))
    # 3. Batches: the first pass at the base size hands over latents (latent modes) or images; with an SDXL
    #    refiner, the first pass's base stops at the switch and the refiner hands them over instead
    output_type = "latent" if is_latent_mode(request.hires.hr_upscaler) else "pil"
    call_kwargs = {"width": request.width, "height": request.height, "output_type": output_type}
    plan = refine(output_type=output_type, later_steps=steps) if refine is not None else None
    if plan is not None:
        call_kwargs.update(plan.base_kwargs)
        hires_pass = plan.then(hires_pass)
    return run_batches(
        request, ctx,
        pipeline_cls=None,  # the loaded pipeline's own class
        call_kwargs=call_kwargs,
        denoising_steps=plan.base_steps if plan is not None else request.steps,
        infotext_params=infotext_params,
        second_pass=hires_pass,
        batch_inputs=variation_noise(request),
    )
