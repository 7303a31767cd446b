"""Stable unCLIP variations (diffusers ``StableUnCLIPImg2ImgPipeline``, e.g. stabilityai/stable-diffusion-2-1-unclip):
the input picture's CLIP image embedding, noised at ``noise_level`` by the model's own ``image_normalizer`` and
``image_noising_scheduler`` (the pipeline's public ``noise_image_embeddings``), is the UNet's ``class_labels``; a
text prompt (optional) is its cross-attention context, as in text-to-image.

The pipeline's ``__call__`` has only the old per-step callback, which cannot stop a job, and no diffusers pipeline
with ``callback_on_step_end`` passes ``class_labels`` to its UNet, so the loop is the pipeline's own (steps 5-9 of
its ``__call__``) written over its public parts: ``prepare_latents``, ``prepare_extra_step_kwargs``, the scheduler,
the UNet. Progress, live previews, Interrupt, Skip and extensions' step hooks go through the shared step callback.
Each image draws its embedding noise, then its latent noise, from its own CPU generator (the order the pipeline
draws them in), so a seed and noise level give the same image in any batch position.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import torch

from pipelines import samplers
from pipelines.errors import ValidationError
from pipelines.infotext.codec import format_infotext
from pipelines.models.loaded import LoadedModel
from pipelines.modes.common import (
    JobContext,
    base_params,
    batch_grid,
    batch_seeds,
    generators,
    job_conditioning,
    job_pipeline,
    resolve_seed,
    result_info,
    saved,
    step_callback,
    tail_params,
)
from pipelines.modes.hires import decode_latents
from pipelines.prompts.conditioning import Conditioning
from pipelines.requests.variation import ImageVariationRequest
from pipelines.results import GeneratedImage, GenerationResult


def max_noise_level(pipe: Any) -> int:
    """The highest noise level the model takes: its noising scheduler's last training step."""
    return int(pipe.image_noising_scheduler.config.num_train_timesteps) - 1


def check_noise_level(request: ImageVariationRequest, pipe: Any, name: str) -> None:
    top = max_noise_level(pipe)
    if request.noise_level > top:
        raise ValidationError("noise_level", f"{name} takes a noise level from 0 to {top}, got {request.noise_level}")


def class_labels(pipe: Any, embeds: torch.Tensor, noise_level: int, gens: list[torch.Generator]) -> torch.Tensor:
    """(batch, 2 x width) class labels: each image's embedding noised with noise from its own generator, followed by
    the noise level's timestep embedding (``noise_image_embeddings``)."""
    noise = torch.cat([torch.randn(embeds.shape, generator=g) for g in gens]).to(embeds.device, embeds.dtype)
    return pipe.noise_image_embeddings(embeds.repeat(len(gens), 1), noise_level, noise=noise)


def denoise(job: JobContext, pipe: Any, request: ImageVariationRequest, seeds: list[int], conditioning: Conditioning,
            embeds: torch.Tensor, label: str) -> torch.Tensor:
    """One batch's latents: the pipeline's loop with classifier-free guidance (zeros as the unconditional image
    embedding, the negative prompt as the unconditional text, as the pipeline does), the text embeddings switched
    where prompt editing or alternation says; stops after a step when the step callback says the job was interrupted
    or skipped (the image so far is kept)."""
    device, dtype = job.loaded.device, pipe.unet.dtype
    gens = generators(seeds)
    guided = request.cfg_scale > 1.0
    labels = class_labels(pipe, embeds, request.noise_level, gens)
    prompt = conditioning.call_kwargs(len(seeds))
    context = prompt["prompt_embeds"].to(device, dtype)
    if guided:
        labels = torch.cat([torch.zeros_like(labels), labels])
        context = torch.cat([prompt["negative_prompt_embeds"].to(device, dtype), context])
    layout = SimpleNamespace(do_classifier_free_guidance=guided)  # how ``context`` is laid out, for step_tensors
    pipe.scheduler.set_timesteps(request.steps, device=device)
    latents = pipe.prepare_latents(len(seeds), pipe.unet.config.in_channels, request.height, request.width, dtype,
                                   device, gens)
    extra = pipe.prepare_extra_step_kwargs(gens, 0.0)
    callback = step_callback(job, steps=request.steps, size=(request.width, request.height), text=label)
    pipe._interrupt = False  # set by the step callback, as on diffusers' own pipelines
    for step, t in enumerate(pipe.scheduler.timesteps):
        model_input = pipe.scheduler.scale_model_input(torch.cat([latents] * 2) if guided else latents, t)
        noise_pred = pipe.unet(model_input, t, encoder_hidden_states=context, class_labels=labels,
                               return_dict=False)[0]
        if guided:
            uncond, cond = noise_pred.chunk(2)
            noise_pred = uncond + request.cfg_scale * (cond - uncond)
        latents = pipe.scheduler.step(noise_pred, t, latents, **extra, return_dict=False)[0]
        latents = callback(pipe, step, t, {"latents": latents})["latents"]
        if pipe._interrupt:
            break
        context = conditioning.step_tensors(layout, step, {"prompt_embeds": context})["prompt_embeds"]
    return latents


def infotext_params(request: ImageVariationRequest, ctx: JobContext, seed: int, pos: int) -> dict[str, Any]:
    return {**base_params(request, ctx, seed), "Variation": "image embedding", "Noise level": request.noise_level,
            **tail_params(request, ctx, pos)}


def run(request: ImageVariationRequest, ctx: JobContext, loaded: LoadedModel,
        embeds: torch.Tensor) -> GenerationResult:
    """The job on a loaded unCLIP model, ``embeds`` the input picture's (1, width) CLIP image embedding."""
    # 1. Check what depends on the model: the noise level's range
    check_noise_level(request, loaded.pipeline, loaded.record.name)
    job = replace(ctx, loaded=loaded)
    base = loaded.pipeline
    spec, schedule = samplers.resolve(request.sampler_name, request.scheduler)
    # 2. The text conditioning: A1111's prompt language (weights, embeddings, editing, alternation) on its encoder
    conditioning = job_conditioning(job, base, request, prompt=request.prompt,
                                    negative_prompt=request.negative_prompt, steps=request.steps)
    first_seed = resolve_seed(request.seed)
    images: list[GeneratedImage] = []
    for iteration, seeds in batch_seeds(job.job, request, first_seed):
        # 3. A pipeline view with the job's sampler; the loop with the noised embedding as class labels
        pipe = job_pipeline(base, samplers.build_scheduler(base.scheduler.config, spec, schedule))
        latents = denoise(job, pipe, request, seeds, conditioning, embeds, f"Batch {iteration + 1}/{request.n_iter}")
        # 4. Decode, save each image with its infotext (the noise level included, so the file reproduces)
        for pos, (image, seed) in enumerate(zip(decode_latents(pipe, latents), seeds, strict=True)):
            text = format_infotext(request.prompt, request.negative_prompt, infotext_params(request, job, seed, pos))
            images.append(saved(image, seed, text, request, job))
    info = result_info(request, job, images, first_seed, spec, schedule)
    return GenerationResult(images=images, info=info, interrupted=job.job.interrupted,
                            grid=batch_grid(request, job, images))
