"""Saving images with their infotext in the PNG ``parameters`` chunk.

Layout follows A1111: ``outputs/<mode>-images/YYYY-MM-DD/NNNNN-SEED.png``, the
number continuing from the highest one already in that folder.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines.files import atomic_file


class SaveFn(Protocol):
    """Where a job's finished image goes: returns the path it was saved at (None: not saved)."""

    def __call__(self, image: Any, *, mode: str, seed: int | None, infotext: str,
                 kind: str = "images") -> Path | None: ...


_NUMBERED = re.compile(r"^(\d{5,})[-.]")  # NNNNN-SEED.png, or NNNNN.png (extras)


def png_info(infotext: str) -> PngInfo:
    info = PngInfo()
    info.add_text("parameters", infotext)
    return info


def _write_png(image: Image.Image, file: BinaryIO, infotext: str) -> None:
    image.save(file, format="PNG", pnginfo=png_info(infotext))


def _next_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _NUMBERED.match(p.name))]
    return max(numbers, default=-1) + 1


def save_image(image: Image.Image, *, outputs_dir: Path, mode: str, seed: int | None, infotext: str,
               today: _dt.date | None = None, kind: str = "images") -> Path:
    """Write ``image`` as PNG with its infotext; never overwrites an existing file.

    ``seed=None`` (images that were not generated, e.g. extras, grids) names the file ``NNNNN.png``;
    ``kind="grids"`` writes to A1111's ``<mode>-grids`` folder, beside ``<mode>-images``. The file appears
    whole or not at all; a full disk raises :class:`~pipelines.errors.DiskFullError`.
    """
    folder = outputs_dir / f"{mode}-{kind}" / (today or _dt.date.today()).isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    number = _next_number(folder)
    while True:
        path = folder / (f"{number:05d}.png" if seed is None else f"{number:05d}-{seed}.png")
        try:
            with atomic_file(path, overwrite=False) as fh:
                _write_png(image, fh, infotext)
            return path
        except FileExistsError:
            number += 1


def read_infotext(path_or_image: Path | Image.Image) -> str | None:
    """The ``parameters`` text of a PNG, or None."""
    image = Image.open(path_or_image) if isinstance(path_or_image, Path) else path_or_image
    value = image.info.get("parameters")
    return value if isinstance(value, str) else None


def save_image_as(image: Image.Image, path: Path, infotext: str) -> Path:
    """Write ``image`` to an exact path (the CLI's ``--out``), infotext included."""
    with atomic_file(path) as fh:
        _write_png(image, fh, infotext)
    return path
