"""outpaint: extend an image beyond its borders, then inpaint the new area.

The canvas is the init image (resized to width x height by resize_mode) with ``expand_*`` pixels
added on each side. The new area starts as the image's edge pixels stretched outwards and then
blurred (so the model begins from the colours at the border rather than from flat grey or black),
and is masked together with a :data:`SEAM` pixel strip of the original along each extended edge,
so that the mask blur blends across the seam. The rest of the original comes back unchanged. The
infotext records the expansion as ``Outpaint: "left 64, right 0, up 0, down 0"`` and the canvas
size as ``Size``; files go to ``outputs/img2img-images`` like every img2img result.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from pipelines.imaging.image_ops import prepare_init_image
from pipelines.modes import inpaint
from pipelines.modes.common import JobContext
from pipelines.requests import Img2ImgRequest, OutpaintRequest
from pipelines.results import GenerationResult

SEAM = 8  # px of the original repainted along each extended edge, so the blend has room
PREFILL_BLUR = 8  # Gaussian radius smoothing the stretched edge pixels in the new area


def expansion_text(request: OutpaintRequest) -> str:
    return (f"left {request.expand_left}, right {request.expand_right}, "
            f"up {request.expand_up}, down {request.expand_down}")


def canvas_image(image: Image.Image, request: OutpaintRequest) -> Image.Image:
    """``image`` (width x height) on the larger canvas, the new area pre-filled from its edges."""
    left, right, up, down = (request.expand_left, request.expand_right, request.expand_up, request.expand_down)
    stretched = np.pad(np.asarray(image), ((up, down), (left, right), (0, 0)), mode="edge")
    canvas = Image.fromarray(stretched, "RGB")
    smooth = canvas.filter(ImageFilter.GaussianBlur(PREFILL_BLUR))
    smooth.paste(image, (left, up))  # the original stays exact; only the new area is smoothed
    return smooth


def canvas_mask(request: OutpaintRequest) -> Image.Image:
    """White over the new area plus a :data:`SEAM` strip of the original on each extended side."""
    width, height = request.canvas_size
    mask = Image.new("L", (width, height), 255)
    left = request.expand_left + (SEAM if request.expand_left else 0)
    top = request.expand_up + (SEAM if request.expand_up else 0)
    right = request.expand_left + request.width - (SEAM if request.expand_right else 0)
    bottom = request.expand_up + request.height - (SEAM if request.expand_down else 0)
    mask.paste(0, (left, top, right, bottom))
    return mask


def inpaint_request(request: OutpaintRequest) -> Img2ImgRequest:
    """The inpainting job that does the work: the canvas and its mask as an ordinary masked img2img."""
    image = prepare_init_image(request.init_image, request.width, request.height, request.resize_mode)
    values: dict[str, Any] = {f.name: getattr(request, f.name) for f in fields(Img2ImgRequest)}
    width, height = request.canvas_size
    values.update(init_image=canvas_image(image, request), mask=canvas_mask(request), resize_mode=0)
    if not request.inpaint_full_res:  # "Whole picture": the canvas is generated at its own size
        values.update(width=width, height=height)
    return Img2ImgRequest(**values)


def run(request: OutpaintRequest, ctx: JobContext) -> GenerationResult:
    # 1. Check inputs
    request.validate()
    # 2. The extended canvas, pre-filled, and the mask over the new area and the seam
    job = inpaint_request(request)
    # 3. Inpaint it; the infotext records the expansion
    return inpaint.run(job, ctx, extra_infotext={"Outpaint": expansion_text(request)})
