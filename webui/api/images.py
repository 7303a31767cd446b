"""Images in and out of the API: base64 / data: URI decoding, PNG encoding with the infotext.

Reading an image's metadata is the core's job (:mod:`pipelines.infotext.png_info`).
"""

from __future__ import annotations

import base64
import binascii
import io

from PIL import Image

from pipelines.errors import ValidationError
from pipelines.imaging.image_input import read_image
from pipelines.outputs import png_info


def encode_png(image: Image.Image, infotext: str | None = None) -> str:
    """Base64 PNG (no ``data:`` prefix), keeping the infotext in the ``parameters`` text chunk."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(infotext) if infotext else None)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_image(data: str, field: str = "image") -> Image.Image:
    """A PIL image from base64 or a ``data:image/...;base64,`` URI, read fully and normalised
    (:func:`~pipelines.imaging.image_input.read_image`); ValidationError naming ``field``."""
    text = data.strip()
    if text.startswith(("http://", "https://")):
        raise ValidationError(field, "image URLs are not fetched (api_enable_requests is off); send base64")
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValidationError(field, "data: URI must be base64-encoded (data:image/png;base64,...)")
    text = "".join(text.split())  # line-wrapped base64 (as the base64 tool writes it) is fine
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(field, f"not valid base64 ({exc})") from exc
    return read_image(raw, field)
