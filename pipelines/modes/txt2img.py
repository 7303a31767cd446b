"""txt2img: prompt in, images out, each saved with its infotext; hires fix adds a second pass (modes/hires.py)."""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from pipelines.errors import UnsupportedModelError
from pipelines.modes import hires
from pipelines.modes.common import (
    JobContext,
    base_params,
    run_batches,
    tail_params,
    variation_noise,
    with_resolved_seeds,
)
from pipelines.modes.inpaint import is_inpainting_model
from pipelines.requests import Txt2ImgRequest
from pipelines.results import GenerationResult


def infotext_params(request: Txt2ImgRequest, ctx: JobContext, seed: int, batch_pos: int) -> dict:
    return {**base_params(request, ctx, seed), **tail_params(request, ctx, batch_pos)}


def blank_canvas(width: int, height: int) -> dict[str, Any]:
    """What a dedicated inpainting checkpoint (9-channel UNet) draws from in txt2img: everything masked, so
    its masked-image input is empty and the latents start from pure noise (strength 1), as A1111 does."""
    return {"image": Image.new("RGB", (width, height), (127, 127, 127)),
            "mask_image": Image.new("L", (width, height), 255), "strength": 1.0}


@torch.inference_mode()
def run(request: Txt2ImgRequest, ctx: JobContext) -> GenerationResult:
    # 1. Check inputs
    request.validate()
    inpainting_model = is_inpainting_model(ctx.loaded.pipeline)
    if inpainting_model and request.hires is not None:
        raise UnsupportedModelError(f"{ctx.loaded.record.name} is an inpainting checkpoint: hires fix needs an "
                                    "ordinary one (use it in img2img / inpaint, or turn hires fix off)")
    request = with_resolved_seeds(request)  # variation seeds are per image: the pairs must be known
    # 2. With hires fix, the two-pass job (pipelines/modes/hires.py)
    if request.hires is not None:
        return hires.run(request, ctx)
    # 3. Batches on a per-job pipeline view of the loaded model: denoise, report every step, save
    call_kwargs: dict[str, Any] = {"width": request.width, "height": request.height}
    if inpainting_model:
        call_kwargs.update(blank_canvas(request.width, request.height))
    return run_batches(
        request, ctx,
        pipeline_cls=None,  # the loaded pipeline's own class
        call_kwargs=call_kwargs,
        denoising_steps=request.steps,
        infotext_params=infotext_params,
        batch_inputs=variation_noise(request),
    )
