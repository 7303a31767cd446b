"""Images users send (API base64, UI uploads, batch files) read fully and safely, or refused naming the field.

Refused with :class:`~pipelines.errors.ValidationError`: zero bytes, data that is not an image, a file cut
short (decoded to the end, and a PNG's chunks checked up to ``IEND``, so a truncated upload is never
"repainted"), and images over :data:`MAX_INPUT_PIXELS` (a decompression bomb is refused from its header,
before its pixels are decoded). Accepted and normalised (:func:`normalise`) so every mode of the core
gets a mode it handles: CMYK, YCbCr, LAB, HSV -> RGB; 16- and 32-bit greyscale -> 8-bit L (scaled,
not clipped to white); palette -> RGB, or RGBA when it has transparency; LA and premultiplied alpha ->
RGBA (alpha is kept: img2img composites it, inpainting reads a mask from it); an animated image (GIF,
APNG, WebP) -> its first frame.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipelines.errors import ValidationError

log = logging.getLogger(__name__)

# Pillow's own decompression-bomb threshold (it only warns up to twice this); about 9459 x 9459.
MAX_INPUT_PIXELS = 89_478_485
_KEPT_MODES = ("1", "L", "RGB", "RGBA")
_TO_RGB = ("CMYK", "YCbCr", "LAB", "HSV")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def read_image(data: bytes, field: str) -> Image.Image:
    """The image in ``data``, fully decoded and normalised; ValidationError naming ``field`` otherwise."""
    if not data:
        raise ValidationError(field, "is empty (0 bytes); send a PNG, JPEG or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                _check_pixels(field, probe.size)
                image_format = probe.format
                if image_format == "PNG":
                    probe.verify()  # chunk CRCs up to IEND: a PNG cut short fails here even if its pixels decode
            image = Image.open(io.BytesIO(data))
            frames = getattr(image, "n_frames", 1)
            image.load()  # every pixel now: a truncated file fails here, not in the middle of a job
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValidationError(field, f"is larger than the limit of {MAX_INPUT_PIXELS / 1e6:.0f} megapixels "
                              f"(a decompression bomb?): {_reason(exc)}") from exc
    except UnidentifiedImageError as exc:
        raise ValidationError(field, "is not an image (no format Pillow reads); send a PNG, JPEG or WebP file") from exc
    except _DECODE_ERRORS as exc:
        raise ValidationError(field, f"is not a readable image ({_reason(exc)}); send a complete PNG, JPEG or WebP "
                              "file") from exc
    if frames > 1:
        log.info("%s: animated %s with %d frames; the first frame is used", field, image_format, frames)
    return normalise(image)


def read_image_file(path: str | Path, field: str) -> Image.Image:
    """:func:`read_image` of a file's bytes (a file that cannot be read names ``field``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(field, f"cannot be read ({exc.strerror or exc})") from exc
    return read_image(data, field)


def normalise(image: Image.Image) -> Image.Image:
    """``image`` (its first frame) in one of the modes the core handles: 1, L, RGB or RGBA.

    Text chunks (``image.info``, e.g. a PNG's infotext) are kept.
    """
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    info = dict(image.info)
    mode = image.mode
    if mode in _KEPT_MODES:
        result = image.copy() if getattr(image, "n_frames", 1) > 1 else image
    elif mode in _TO_RGB:
        result = image.convert("RGB")
    elif mode.startswith("I") or mode == "F":
        result = _to_8bit(image)
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        result = image.convert("RGBA" if has_alpha else "RGB")
    else:  # LA, La, RGBa, RGBX, ...: keep any alpha
        result = image.convert("RGBA" if "A" in mode or "a" in mode else "RGB")
    result.info.update(info)
    return result


def _to_8bit(image: Image.Image) -> Image.Image:
    """A 16-bit (``I;16*``), 32-bit integer (``I``) or float (``F``) greyscale image as 8-bit L, scaled."""
    values = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        top = 1.0 if values.size and float(np.nanmax(values)) <= 1.0 else 255.0
    else:
        top = 65535.0  # 16-bit PNG and TIFF greyscale (Pillow opens some as "I")
    scaled = np.clip(np.nan_to_num(values) / top * 255.0, 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _check_pixels(field: str, size: tuple[int, int]) -> None:
    width, height = size
    if min(width, height) < 1:
        raise ValidationError(field, f"is empty ({width}x{height})")
    if width * height > MAX_INPUT_PIXELS:
        raise ValidationError(field, f"is too large ({width}x{height}, {width * height / 1e6:.0f} megapixels); "
                              f"the limit is {MAX_INPUT_PIXELS / 1e6:.0f} megapixels")


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
