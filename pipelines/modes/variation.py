"""Image variations from an image embedding (DALL·E 2's idea, on Stable Diffusion): the input picture is encoded
by the variation model's CLIP image encoder, and the UNet draws new pictures from that embedding instead of a
text prompt (diffusers ``StableDiffusionImageVariationPipeline``, e.g. lambdalabs/sd-image-variations-diffusers).

The model is held through the store as its own kind (:attr:`ModelType.IMAGE_VARIATION`). The image embedding is
computed as that pipeline does (``feature_extractor`` then ``image_encoder(...).image_embeds``) and handed to the
text-to-image pipeline's denoising loop as its ``prompt_embeds`` (zeros as the unconditional side, as the
variation pipeline uses), so progress, live previews, Interrupt and Skip work as in every mode; the variation
pipeline's own ``__call__`` has only the old per-step callback, which cannot stop a job.

Stable unCLIP models (``StableUnCLIPImg2ImgPipeline``) are the same kind and take the same requests; their job,
with its embedding noise level and optional prompt, is :mod:`pipelines.modes.unclip`'s.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import torch

from pipelines import samplers
from pipelines.actions import img2img_from_image, new_seed
from pipelines.errors import ValidationError
from pipelines.infotext.codec import format_infotext, parse_infotext
from pipelines.lazy_diffusers import diffusers_attr
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord
from pipelines.modes import unclip
from pipelines.modes.common import (
    JobContext,
    base_params,
    batch_grid,
    batch_seeds,
    generators,
    job_pipeline,
    resolve_seed,
    result_info,
    saved,
    step_callback,
    tail_params,
)
from pipelines.requests.variation import ImageVariationRequest
from pipelines.results import GeneratedImage, GenerationResult


def variation_record(store: Any, name: str | None) -> ModelRecord:
    """The image-variation model ``name`` (None: the first installed), or a ValidationError saying how to get one."""
    if name is not None:
        return store.find(name, ModelType.IMAGE_VARIATION)
    installed = vary_model(store)
    if installed is None:
        raise ValidationError("variation_model", "no image-variation model is installed: put a diffusers "
                              "StableDiffusionImageVariationPipeline folder (e.g. lambdalabs/sd-image-variations-"
                              "diffusers) or a StableUnCLIPImg2ImgPipeline one (e.g. stabilityai/stable-diffusion-2-1-"
                              "unclip) in models/Stable-diffusion")
    return installed


def variation_available(store: Any) -> bool:
    """Whether an image-variation model is installed (the Vary button and the img2img sub-tab show then)."""
    return any(r.installed and not r.problem for r in store.records(ModelType.IMAGE_VARIATION))


def noise_level_range(record: ModelRecord | None) -> int | None:
    """The highest noise level a Stable unCLIP model takes (its noising scheduler's last training step, read from its
    config without loading it); None for other models."""
    if not is_unclip(record) or record.path is None:
        return None
    try:
        config = json.loads((record.path / "image_noising_scheduler" / "scheduler_config.json").read_text())
        return int(config["num_train_timesteps"]) - 1
    except (OSError, ValueError, KeyError, TypeError):
        return 999  # diffusers' default DDPMScheduler: 1000 steps


def vary_model(store: Any) -> ModelRecord | None:
    """The model Vary's "Variation (image embedding)" runs on (the first installed), or None."""
    installed = [r for r in store.records(ModelType.IMAGE_VARIATION) if r.installed and not r.problem]
    return installed[0] if installed else None


def vary_by_embedding(image: Any, infotext: str, store: Any, noise_level: int | None = None) -> ImageVariationRequest:
    """Vary's "Variation (image embedding)": new pictures from the image's CLIP embedding with its own sampler,
    steps, CFG scale and size (read from its infotext, as the other Vary buttons do), a new random seed; on a Stable
    unCLIP model with the image's prompts and ``noise_level`` (None: the image's own "Noise level", else 0)."""
    if image is None:
        raise ValidationError("image", "select an image to vary")
    settings, _ = img2img_from_image(image, infotext, store)
    sampler = settings.sampler_name if not samplers.resolve(settings.sampler_name)[0].pixel_space_only else \
        samplers.DEFAULT_SAMPLER
    job = ImageVariationRequest(image=image, sampler_name=sampler, scheduler=settings.scheduler,
                                steps=min(settings.steps, 150), cfg_scale=settings.cfg_scale, width=settings.width,
                                height=settings.height, seed=new_seed(settings.seed))
    top = noise_level_range(variation_record(store, None))
    if top is None:
        return job
    if noise_level is None:
        own = parse_infotext(infotext).get("Noise level", "0").strip()
        noise_level = min(int(own), top) if own.isdigit() else 0
    return replace(job, prompt=settings.prompt, negative_prompt=settings.negative_prompt, noise_level=noise_level)


def is_unclip(record: ModelRecord | None) -> bool:
    """Whether ``record`` is a Stable unCLIP model (it takes a noise level and a prompt)."""
    return record is not None and record.kind is not None and record.kind.unclip


def image_embeds(pipe: Any, image: Any) -> torch.Tensor:
    """(1, width) CLIP image embedding of ``image``, as both pipelines compute it."""
    pixels = pipe.feature_extractor(images=image.convert("RGB"), return_tensors="pt").pixel_values
    pixels = pixels.to(device=pipe.image_encoder.device, dtype=pipe.image_encoder.dtype)
    return pipe.image_encoder(pixels).image_embeds


def infotext_params(request: ImageVariationRequest, ctx: JobContext, seed: int, pos: int) -> dict[str, Any]:
    return {**base_params(request, ctx, seed), "Variation": "image embedding", **tail_params(request, ctx, pos)}


@torch.inference_mode()
def run(request: ImageVariationRequest, ctx: JobContext) -> GenerationResult:
    # 1. Check inputs, find the variation model
    request.validate()
    assert ctx.store is not None
    record = variation_record(ctx.store, request.variation_model)
    spec, schedule = samplers.resolve(request.sampler_name, request.scheduler)
    if spec.pixel_space_only:
        raise ValidationError("sampler_name", f"{spec.name} runs unconditional pixel-space models only")
    if not is_unclip(record):  # what only Stable unCLIP reads is refused, not dropped
        if request.noise_level:
            raise ValidationError("noise_level", f"{record.name} is not a Stable unCLIP model: it takes no noise "
                                  "level (leave it at 0)")
        for field in ("prompt", "negative_prompt"):
            if getattr(request, field).strip():
                raise ValidationError(field, f"{record.name} draws from the image embedding alone: it takes no "
                                      "prompt (Stable unCLIP models do)")
    with ctx.store.use(record, ctx.on_progress, model_type=ModelType.IMAGE_VARIATION) as loaded:
        job = replace(ctx, loaded=loaded)
        base = loaded.pipeline
        # 2. The image embedding once per job; zeros are the unconditional side of classifier-free guidance
        embeds = image_embeds(base, request.image).to(base.unet.dtype)
        if is_unclip(loaded.record):
            return unclip.run(request, ctx, loaded, embeds)
        embeds = embeds.unsqueeze(1)  # one token of cross-attention context
        first_seed = resolve_seed(request.seed)
        images: list[GeneratedImage] = []
        text_to_image = diffusers_attr("StableDiffusionPipeline")
        for iteration, seeds in batch_seeds(job.job, request, first_seed):
            # 3. The text-to-image denoising loop on the variation model's UNet and VAE, the embedding as context
            pipe = job_pipeline(base, samplers.build_scheduler(base.scheduler.config, spec, schedule),
                                cls=text_to_image, text_encoder=None, tokenizer=None, safety_checker=None,
                                feature_extractor=None, image_encoder=None, requires_safety_checker=False)
            label = f"Batch {iteration + 1}/{request.n_iter}"
            output = pipe(prompt_embeds=embeds.repeat(request.batch_size, 1, 1),
                          negative_prompt_embeds=torch.zeros_like(embeds).repeat(request.batch_size, 1, 1),
                          width=request.width, height=request.height, num_inference_steps=request.steps,
                          guidance_scale=request.cfg_scale, generator=generators(seeds),
                          callback_on_step_end=step_callback(job, steps=request.steps,
                                                             size=(request.width, request.height), text=label))
            # 4. Save each image with its infotext
            for pos, (image, seed) in enumerate(zip(output.images, seeds, strict=True)):
                text = format_infotext(request.prompt, "", infotext_params(request, job, seed, pos))
                images.append(saved(image, seed, text, request, job))
        info = result_info(request, job, images, first_seed, spec, schedule)
        return GenerationResult(images=images, info=info, interrupted=job.job.interrupted,
                                grid=batch_grid(request, job, images))
