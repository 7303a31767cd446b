"""img2img: an image and a prompt in, images out, each saved with its infotext.

The pipeline is a per-job view over the loaded model's modules (diffusers' Img2Img pipeline class
built from ``components``), so switching between txt2img and img2img never loads weights twice.
"""

from __future__ import annotations

from typing import Any

import torch

from pipelines.errors import UnsupportedModelError
from pipelines.image_ops import prepare_init_image
from pipelines.lazy_diffusers import diffusers_attr
from pipelines.modes.common import JobContext, base_params, run_batches, tail_params
from pipelines.requests import Img2ImgRequest
from pipelines.results import GenerationResult

IMG2IMG_CLASSES = {  # loaded pipeline class -> the img2img pipeline over the same modules
    "StableDiffusionPipeline": "StableDiffusionImg2ImgPipeline",
    "StableDiffusionXLPipeline": "StableDiffusionXLImg2ImgPipeline",
}


def img2img_class(base: Any) -> type:
    name = IMG2IMG_CLASSES.get(type(base).__name__)
    if name is None:
        raise UnsupportedModelError(f"img2img does not run on {type(base).__name__} models yet "
                                    "(inpainting checkpoints arrive with the inpaint mode)")
    return diffusers_attr(name)


def infotext_params(request: Img2ImgRequest, ctx: JobContext, seed: int, batch_pos: int) -> dict:
    # A1111's order: "Denoising strength" comes after Size/Model and before RNG
    return {**base_params(request, ctx, seed), "Denoising strength": request.denoising_strength,
            **tail_params(request, batch_pos)}


@torch.inference_mode()
def run(request: Img2ImgRequest, ctx: JobContext) -> GenerationResult:
    # 1. Check inputs and pick the img2img pipeline class for the loaded model
    request.validate()
    cls = img2img_class(ctx.loaded.pipeline)
    # 2. The init image as RGB at exactly width x height
    init = prepare_init_image(request.init_image, request.width, request.height, request.resize_mode)
    # 3. Batches on a per-job view of the loaded modules; only steps * strength steps run
    return run_batches(
        request, ctx,
        pipeline_cls=cls,
        call_kwargs={"image": [init] * request.batch_size, "strength": request.denoising_strength},
        denoising_steps=request.denoising_steps,
        infotext_params=infotext_params,
    )
