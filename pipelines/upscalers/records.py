"""Records of the upscalers that exist: the built-in Pillow resizes and model files on disk."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

log = logging.getLogger(__name__)

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth", ".pt")
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


def model_record(path: Path) -> UpscalerRecord:
    scale = scale_from_name(path.stem)
    return UpscalerRecord(path.stem, UpscalerKind.SPANDREL, scale or DEFAULT_MODEL_SCALE, path=path,
                          model_name=path.stem)


def scan_model_files(folders: tuple[Path, ...], *, allow_pickle: bool) -> tuple[list[UpscalerRecord], list[Path]]:
    """Upscaler model files in ``folders``; returns (records, pickled files skipped for lack of opt-in)."""
    records: list[UpscalerRecord] = []
    skipped: list[Path] = []
    seen: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            suffix = path.suffix.lower()
            if suffix in PICKLE_SUFFIXES and not allow_pickle:
                skipped.append(path)
                continue
            if suffix not in SAFE_SUFFIXES + PICKLE_SUFFIXES or path.stem in seen:
                continue
            seen.add(path.stem)
            records.append(model_record(path))
    if skipped:
        log.info("skipping %d pickled upscaler file(s) (start with --allow-pickle to load them): %s",
                 len(skipped), ", ".join(p.name for p in skipped))
    return records, skipped
