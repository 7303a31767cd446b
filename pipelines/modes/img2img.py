"""img2img: an image and a prompt in, images out, each saved with its infotext. With a mask it is
inpainting (:mod:`pipelines.modes.inpaint`).

The pipeline is a per-job view over the loaded model's modules (diffusers' Img2Img pipeline class
built from ``components``), so switching between txt2img and img2img never loads weights twice.

Resize mode 3 ("Just resize (latent upscale)") encodes the init image at its own size (rounded to
multiples of 8), resizes the latents to width/8 x height/8 with the "Latent" mode (bilinear) and
hands them to diffusers as ``image``: its img2img pipelines take a 4-channel tensor there as ready
init latents.
"""

from __future__ import annotations

from typing import Any

import torch

from pipelines.errors import UnsupportedModelError
from pipelines.imaging.image_ops import encode_latents, prepare_init_image, size_multiple_of_8, to_rgb
from pipelines.imaging.latent_upscale import upscale_latents
from pipelines.imaging.vae_io import encode_with
from pipelines.lazy_diffusers import diffusers_attr
from pipelines.modes import inpaint
from pipelines.modes.common import BatchInputs, JobContext, base_params, generators, run_batches, tail_params
from pipelines.requests import Img2ImgRequest
from pipelines.results import GenerationResult

LATENT_RESIZE = 3  # "Just resize (latent upscale)"
LATENT_RESIZE_MODE = "Latent"  # A1111's resize mode 3 resizes bilinearly
IMG2IMG_CLASSES = {  # loaded pipeline class -> the img2img pipeline over the same modules
    "StableDiffusionPipeline": "StableDiffusionImg2ImgPipeline",
    "StableDiffusionXLPipeline": "StableDiffusionXLImg2ImgPipeline",
    "StableDiffusionXLImg2ImgPipeline": "StableDiffusionXLImg2ImgPipeline",  # the SDXL refiner, as A1111 allows
}


def img2img_class(base: Any) -> type:
    name = IMG2IMG_CLASSES.get(type(base).__name__)
    if name is None:
        raise UnsupportedModelError(f"img2img does not run on {type(base).__name__} models")
    return diffusers_attr(name)


def infotext_params(request: Img2ImgRequest, ctx: JobContext, seed: int, batch_pos: int) -> dict:
    # A1111's order: "Denoising strength" comes after Size/Model and before RNG
    return {**base_params(request, ctx, seed), "Denoising strength": request.denoising_strength,
            **tail_params(request, ctx, batch_pos)}


def latent_upscaled_init(request: Img2ImgRequest, vae: Any = None) -> BatchInputs:
    """``batch_inputs`` for resize mode 3: the init image's latents (one VAE sample per seed, drawn
    as diffusers would draw it; by ``vae`` when it is not the pipeline's) resized to the requested size."""
    image = size_multiple_of_8(to_rgb(request.init_image))

    def inputs(pipe: Any, seeds: list[int]) -> dict[str, Any]:
        pixels = pipe.image_processor.preprocess(image)
        latents = encode_with(vae, pixels, generators(seeds)) if vae is not None else \
            encode_latents(pipe, pixels, generators(seeds))
        return {"image": upscale_latents(latents, request.width, request.height, LATENT_RESIZE_MODE,
                                         vae_scale_factor=pipe.vae_scale_factor)}

    return inputs


def encoded_init(init: Any, vae: Any) -> BatchInputs:
    """``batch_inputs`` giving the pipeline ready init latents encoded by ``vae``, another VAE than the one that
    decodes (A1111's "VAE type for encode" differing from "for decode")."""

    def inputs(pipe: Any, seeds: list[int]) -> dict[str, Any]:
        return {"image": encode_with(vae, pipe.image_processor.preprocess(init), generators(seeds))}

    return inputs


@torch.inference_mode()
def run(request: Img2ImgRequest, ctx: JobContext) -> GenerationResult:
    # 1. Check inputs; a mask (or a 9-channel inpainting model, which always reads one) makes it inpainting
    request.validate()
    if request.mask is not None or inpaint.is_inpainting_model(ctx.loaded.pipeline):
        return inpaint.run(request, ctx)
    cls = img2img_class(ctx.loaded.pipeline)
    # 2. The init image as RGB at exactly width x height, or (resize mode 3) as latents resized to it
    call_kwargs: dict[str, Any] = {"strength": request.denoising_strength}
    batch_inputs = None
    if request.resize_mode == LATENT_RESIZE:
        batch_inputs = latent_upscaled_init(request, ctx.encode_vae)
    elif ctx.encode_vae is not None:  # sd_vae_encode_method: encoded by another VAE than the one that decodes
        batch_inputs = encoded_init(prepare_init_image(request.init_image, request.width, request.height,
                                                       request.resize_mode), ctx.encode_vae)
    else:
        init = prepare_init_image(request.init_image, request.width, request.height, request.resize_mode)
        call_kwargs["image"] = [init] * request.batch_size
    # 3. Batches on a per-job view of the loaded modules; only steps * strength steps run
    return run_batches(
        request, ctx,
        pipeline_cls=cls,
        call_kwargs=call_kwargs,
        denoising_steps=request.denoising_steps,
        infotext_params=infotext_params,
        batch_inputs=batch_inputs,
    )
