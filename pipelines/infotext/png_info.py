"""Generation metadata in image files: the A1111 infotext and what other tools write.

Where the infotext is found, in order:

1. the PNG ``parameters`` text chunk (tEXt, zTXt or iTXt): A1111, Forge, SD.Next,
   Fooocus and Atelier;
2. the EXIF ``UserComment`` (JPEG and WebP from A1111, any image with EXIF), whose
   first 8 bytes name the charset (``UNICODE\\0``, ``ASCII\\0\\0\\0``, ``JIS``, or zeros);
3. NovelAI's ``Comment`` JSON (with ``Software: NovelAI``), converted to an infotext
   as A1111 does; Fooocus's JSON scheme (``fooocus_scheme: fooocus``) likewise.

Every other text chunk is returned raw in ``items``: ComfyUI ``prompt``/``workflow``,
InvokeAI ``invokeai_metadata``/``invokeai_graph``/``invokeai_workflow``, Fooocus
``fooocus_scheme``, NovelAI ``Comment``/``Software``, JPEG comments and so on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from pipelines import samplers
from pipelines.infotext.codec import format_infotext

log = logging.getLogger(__name__)

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
# Plain EXIF text tags some tools fill (Fooocus writes Software, others ImageDescription).
EXIF_TEXT_TAGS = {0x010E: "ImageDescription", 0x0131: "Software", 0x013B: "Artist"}
_CHARSETS = {b"ASCII\0\0\0": "utf-8", b"JIS\0\0\0\0\0": "shift_jis", b"\0" * 8: "utf-8"}
# Fooocus/ComfyUI sampler ids whose A1111 name is not an alias in pipelines.samplers.
_FOREIGN_SAMPLERS = {"euler_ancestral": "Euler a", "dpm_2_ancestral": "DPM2 a", "uni_pc": "UniPC",
                     "uni_pc_bh2": "UniPC", "dpmpp_2m": "DPM++ 2M", "dpmpp_sde": "DPM++ SDE"}


@dataclass(frozen=True)
class ImageMetadata:
    """What an image file says about how it was made."""

    parameters: str | None  # the A1111 infotext, or None
    source: str | None = None  # where it came from: "parameters", "EXIF UserComment", "NovelAI", ...
    items: dict[str, str] = field(default_factory=dict)  # every other text entry, raw
    format: str | None = None  # "PNG", "JPEG", "WEBP", ...


def _decode_utf16(body: bytes) -> str:
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16", errors="replace")
    # No BOM: EXIF says "the byte order of the file", piexif always writes big-endian.
    # ASCII text has its zero bytes first in big-endian, second in little-endian.
    even_zeros, odd_zeros = body[0::2].count(0), body[1::2].count(0)
    return body.decode("utf-16-be" if even_zeros >= odd_zeros else "utf-16-le", errors="replace")


def decode_user_comment(raw: bytes | str | None) -> str | None:
    """The text of an EXIF UserComment (its 8-byte charset prefix read and removed)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw
    elif raw[:8] == b"UNICODE\0":
        text = _decode_utf16(raw[8:])
    elif raw[:8] in _CHARSETS:
        text = raw[8:].decode(_CHARSETS[raw[:8]], errors="replace")
    else:  # no charset prefix at all (some tools): take it as UTF-8
        text = raw.decode("utf-8", errors="replace")
    text = text.replace("\0", "").strip()
    return text or None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return str(value)  # iTXt values are a str subclass
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None  # binary (EXIF, ICC profile, XMP packets in other encodings)
    return None


def _exif_texts(image: Image.Image) -> dict[str, str]:
    try:
        exif = image.getexif()
    except Exception as exc:  # a broken EXIF block must not hide the rest
        log.info("unreadable EXIF: %s", exc)
        return {}
    out: dict[str, str] = {}
    comment = decode_user_comment(exif.get_ifd(EXIF_IFD).get(USER_COMMENT))
    if comment:
        out["exif comment"] = comment
    for tag, name in EXIF_TEXT_TAGS.items():
        value = _text(exif.get(tag))
        if value and value.strip("\0 "):
            out[f"EXIF {name}"] = value.strip("\0 ")
    return out


def _sampler_label(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    name = name.removesuffix("_gpu")
    if name in _FOREIGN_SAMPLERS:
        return _FOREIGN_SAMPLERS[name]
    spec = samplers.find_sampler(name) or samplers.find_sampler(f"k_{name}")
    return spec.name if spec else name


def _from_novelai(comment: str, description: str | None, size: tuple[int, int]) -> str | None:
    """NovelAI's JSON ``Comment`` as an infotext (prompt from ``Description``, negative from ``uc``)."""
    try:
        data = json.loads(comment)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    params = {"Steps": data.get("steps"), "Sampler": _sampler_label(data.get("sampler")),
              "CFG scale": data.get("scale"), "Seed": data.get("seed"), "Size": f"{size[0]}x{size[1]}"}
    prompt = description if description is not None else str(data.get("prompt", ""))
    return format_infotext(prompt, str(data.get("uc", "")), params)


def _from_fooocus_json(text: str) -> str | None:
    """Fooocus's JSON metadata scheme as an infotext."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    size = None
    resolution = str(data.get("resolution", "")).strip("()[] ").replace(" ", "")
    if resolution.count(",") == 1:
        size = "x".join(resolution.split(","))
    schedule = samplers.find_schedule(str(data.get("scheduler", "")))
    params = {"Steps": data.get("steps"), "Sampler": _sampler_label(data.get("sampler")),
              "Schedule type": schedule.label if schedule else None, "CFG scale": data.get("guidance_scale"),
              "Seed": data.get("seed"), "Size": size, "Model hash": data.get("base_model_hash"),
              "Model": data.get("base_model"), "Version": data.get("version")}
    return format_infotext(str(data.get("prompt", "")), str(data.get("negative_prompt", "")), params)


def read_image_metadata(image: Image.Image) -> ImageMetadata:
    """Read the infotext and the other text metadata of an opened image."""
    items: dict[str, str] = {}
    # A PNG's ``text`` also holds chunks written after the image data (``info`` only has those before).
    chunks = {**image.info, **(getattr(image, "text", None) or {})}
    for key, value in chunks.items():
        text = _text(value) if key not in ("exif", "icc_profile") else None
        if text is not None and isinstance(key, str):
            items[key] = text
    items.update(_exif_texts(image))
    fmt = image.format
    if items.get("fooocus_scheme", "").strip() == "fooocus" and "parameters" in items:
        converted = _from_fooocus_json(items["parameters"])
        if converted is not None:
            return ImageMetadata(converted, "Fooocus JSON", items, fmt)
    if "parameters" in items:
        return ImageMetadata(items.pop("parameters"), "parameters", items, fmt)
    if "exif comment" in items:
        return ImageMetadata(items.pop("exif comment"), "EXIF UserComment", items, fmt)
    if items.get("Software") == "NovelAI" and "Comment" in items:
        converted = _from_novelai(items["Comment"], items.get("Description"), image.size)
        if converted is not None:
            return ImageMetadata(converted, "NovelAI", items, fmt)
    return ImageMetadata(None, None, items, fmt)
