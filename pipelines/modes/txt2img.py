"""txt2img: prompt in, images out, each saved with its infotext; hires fix adds a second pass (modes/hires.py),
the SDXL refiner takes over the last steps (modes/refiner.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from PIL import Image

from pipelines.errors import UnsupportedModelError
from pipelines.modes import hires, refiner
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
    return {**base_params(request, ctx, seed),
            **tail_params(request, ctx, batch_pos, extra=refiner.infotext_params(request, ctx))}


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
    if ctx.loaded.record.kind is not None and ctx.loaded.record.kind.refiner:
        raise UnsupportedModelError(f"{ctx.loaded.record.name} is an SDXL refiner: it only takes over the last "
                                    "steps of a job; pick an SDXL checkpoint and choose this one as the Refiner")
    if inpainting_model and ctx.refiner is not None:
        raise UnsupportedModelError(f"{ctx.loaded.record.name} is an inpainting checkpoint: the refiner needs an "
                                    "ordinary one")
    request = with_resolved_seeds(request)  # variation seeds are per image: the pairs must be known
    # 2. With hires fix, the two-pass job (pipelines/modes/hires.py); the refiner belongs to its first pass
    if request.hires is not None:
        return hires.run(request, ctx, refine=partial(refiner.plan, request, ctx))
    # 3. With a refiner, the base stops at the switch and hands its latents to the refiner (modes/refiner.py)
    refine = refiner.plan(request, ctx, output_type="pil")
    # 4. Batches on a per-job pipeline view of the loaded model: denoise, report every step, save
    call_kwargs: dict[str, Any] = {"width": request.width, "height": request.height}
    if inpainting_model:
        call_kwargs.update(blank_canvas(request.width, request.height))
    if refine is not None:
        call_kwargs.update(refine.base_kwargs)
    return run_batches(
        request, ctx,
        pipeline_cls=None,  # the loaded pipeline's own class
        call_kwargs=call_kwargs,
        denoising_steps=refine.base_steps if refine is not None else request.steps,
        infotext_params=infotext_params,
        second_pass=refine.then(None) if refine is not None else None,
        batch_inputs=variation_noise(request),
    )
