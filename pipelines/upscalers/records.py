"""Entries of the upscaler list: the built-in Pillow resizes, model files and the SD x4 upscaler."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from pipelines.models.refs import ModelRecord

log = logging.getLogger(__name__)

_SCALE_IN_NAME = (re.compile(r"(?:^|[^0-9a-z])(\d)x(?:[^0-9]|$)", re.IGNORECASE),
                  re.compile(r"x(\d)(?:[^0-9]|$)", re.IGNORECASE))
DEFAULT_MODEL_SCALE = 4  # most community upscalers are 4x


class UpscalerKind(StrEnum):
    NONE = "none"  # no model: a plain Lanczos resize when a size change is asked for
    PIL = "pil"  # a Pillow resampling filter
    SPANDREL = "spandrel"  # a model file spandrel loads (ESRGAN, SwinIR, HAT, DAT, ...)
    DIFFUSION = "diffusion"  # the Stable Diffusion x4 upscaler pipeline


@dataclass(frozen=True)
class UpscalerRecord:
    """One entry of /sdapi/v1/upscalers."""

    name: str
    kind: UpscalerKind
    scale: float
    path: Path | None = None
    model_name: str | None = None
    model: ModelRecord | None = None  # the store's record, for model upscalers
    scale_known: bool = False  # True once read from the loaded model, not guessed from the name

    def with_scale(self, scale: float) -> UpscalerRecord:
        return replace(self, scale=scale, scale_known=True)


BUILTINS = (
    UpscalerRecord("None", UpscalerKind.NONE, 4, scale_known=True),
    UpscalerRecord("Lanczos", UpscalerKind.PIL, 4, model_name="Lanczos", scale_known=True),
    UpscalerRecord("Nearest", UpscalerKind.PIL, 4, model_name="Nearest", scale_known=True),
)


def scale_from_name(stem: str) -> int | None:
    """The scale a file name announces ("4x-UltraSharp", "RealESRGAN_x4plus", "2x_foo"), if any."""
    for pattern in _SCALE_IN_NAME:
        match = pattern.search(stem)
        if match and int(match.group(1)) >= 1:
            return int(match.group(1))
    return None
