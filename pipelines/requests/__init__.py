"""Typed requests, one per generation mode.

Adapters (UI, REST, CLI) build these; ``validate()`` names the bad field and
value before any model is touched.
"""

from pipelines.requests.base import EMPHASIS_MODES, MAX_INPUT_PIXELS, MAX_SEED, GenerationRequest, Txt2ImgRequest
from pipelines.requests.extras import EXTRAS_RESIZE_MODES, MAX_UPSCALE_FACTOR, MAX_UPSCALED_SIDE, ExtrasRequest
from pipelines.requests.hires import HiresFix
from pipelines.requests.img2img import (
    INPAINTING_FILL,
    MASK_MODES,
    OUTPAINT_SIDES,
    RESIZE_MODES,
    Img2ImgRequest,
    OutpaintRequest,
)
from pipelines.requests.refiner import Refiner

__all__ = ["EMPHASIS_MODES", "EXTRAS_RESIZE_MODES", "INPAINTING_FILL", "MASK_MODES", "MAX_INPUT_PIXELS", "MAX_SEED",
           "MAX_UPSCALED_SIDE", "MAX_UPSCALE_FACTOR", "OUTPAINT_SIDES", "RESIZE_MODES", "ExtrasRequest",
           "GenerationRequest", "HiresFix", "Img2ImgRequest", "OutpaintRequest", "Refiner", "Txt2ImgRequest"]
