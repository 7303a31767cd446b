"""Turning an image file and its infotext into a history entry; scanning the outputs folder for image files.

The infotext is read as PNG Info reads it (:func:`~pipelines.infotext.png_info.read_image_metadata`: the PNG
``parameters`` chunk, the EXIF UserComment of A1111's JPEG and WebP, NovelAI and Fooocus metadata), so images
made by A1111, Forge and other tools and dropped into ``outputs/`` are indexed like Atelier's own. An image
without any is indexed too, with empty parameters. The mode and kind come from A1111's folder names
(``txt2img-images``, ``img2img-grids``, ``extras-images``, ...), else from the infotext's keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pipelines.history.records import HistoryEntry
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.png_info import read_image_metadata

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
TRASH = ".trash"  # under the outputs folder: trashed images keep their relative path below it
_FOLDER = re.compile(r"^([a-z0-9]+)-(images|grids)$")
_LORA_TAG = re.compile(r"<lora:([^:>]+)")


@dataclass(frozen=True)
class FoundFile:
    """An image file under the outputs folder: its relative path (``/``-separated) and stat."""

    path: Path
    relative: str
    mtime_ns: int
    size: int


def relative_path(path: Path, outputs_dir: Path) -> str:
    return path.resolve().relative_to(outputs_dir.resolve()).as_posix()


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def _mode_and_kind(relative: str, params: dict[str, str]) -> tuple[str, str]:
    parts = relative.split("/")
    if parts[0] == TRASH:
        parts = parts[1:]
    folder = _FOLDER.match(parts[0]) if len(parts) > 1 else None
    if folder:
        return folder.group(1), folder.group(2)
    if not params:
        return "", "images"
    if "Denoising strength" in params and "Hires upscale" not in params:
        return ("inpaint" if "Mask blur" in params else "img2img"), "images"
    if "Postprocess upscaler" in params and "Steps" not in params:
        return "extras", "images"
    return "txt2img", "images"


def _loras(params: dict[str, str], prompt: str) -> tuple[str, ...]:
    names = [part.split(":", 1)[0].strip() for part in params.get("Lora hashes", "").split(",") if ":" in part]
    names += [m.group(1).strip() for m in _LORA_TAG.finditer(prompt)]
    return tuple(dict.fromkeys(name for name in names if name))


def entry_from_infotext(relative: str, infotext: str, size: tuple[int, int], created: float, *,
                        mode: str | None = None) -> HistoryEntry:
    """The entry for the image at ``relative`` (under the outputs folder) whose infotext is ``infotext``."""
    params = parse_infotext(infotext) if infotext.strip() else {}
    found_mode, kind = _mode_and_kind(relative, params)
    trashed = relative.startswith(TRASH + "/")
    prompt = params.get("Prompt", "")
    return HistoryEntry(
        id=0, path=relative, mode=mode or found_mode, kind=kind, prompt=prompt,
        negative_prompt=params.get("Negative prompt", ""), seed=_int(params.get("Seed")),
        width=size[0], height=size[1], sampler=params.get("Sampler", ""), steps=_int(params.get("Steps")),
        cfg_scale=_float(params.get("CFG scale")), model=params.get("Model", ""),
        model_hash=params.get("Model hash", ""), vae=params.get("VAE", ""), vae_hash=params.get("VAE hash", ""),
        loras=_loras(params, prompt), created=created, trashed=trashed,
        original=relative.removeprefix(TRASH + "/") if trashed else "", infotext=infotext)


def read_entry(found: FoundFile) -> HistoryEntry:
    """The entry of an image file, from the metadata in it (raises OSError/ValueError for an unreadable file)."""
    with Image.open(found.path) as image:
        meta = read_image_metadata(image)
        size = image.size
    return entry_from_infotext(found.relative, meta.parameters or "", size, found.mtime_ns / 1e9)


def find_images(outputs_dir: Path) -> Iterator[FoundFile]:
    """Every image file below ``outputs_dir`` (the trash included; hidden files and links skipped)."""
    root = outputs_dir.resolve()
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        dirs[:] = sorted(d for d in dirs if d == TRASH or not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            path = base / name
            try:
                if path.is_symlink():
                    continue
                stat = path.stat()
            except OSError:
                continue  # removed while we looked
            yield FoundFile(path, path.relative_to(root).as_posix(), stat.st_mtime_ns, stat.st_size)
