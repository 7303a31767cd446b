"""txt2img: prompt in, images out, each saved with its infotext; hires fix adds a second pass (modes/hires.py)."""

from __future__ import annotations

import torch

from pipelines.modes import hires
from pipelines.modes.common import JobContext, base_params, run_batches, tail_params
from pipelines.requests import Txt2ImgRequest
from pipelines.results import GenerationResult


def infotext_params(request: Txt2ImgRequest, ctx: JobContext, seed: int, batch_pos: int) -> dict:
    return {**base_params(request, ctx, seed), **tail_params(request, batch_pos)}


@torch.inference_mode()
def run(request: Txt2ImgRequest, ctx: JobContext) -> GenerationResult:
    # 1. Check inputs
    request.validate()
    # 2. With hires fix, the two-pass job (pipelines/modes/hires.py)
    if request.hires is not None:
        return hires.run(request, ctx)
    # 3. Batches on a per-job pipeline view of the loaded model: denoise, report every step, save
    return run_batches(
        request, ctx,
        pipeline_cls=None,  # the loaded pipeline's own class
        call_kwargs={"width": request.width, "height": request.height},
        denoising_steps=request.steps,
        infotext_params=infotext_params,
    )
