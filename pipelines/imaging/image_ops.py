"""Image preparation for the image-to-image modes: any Pillow image to RGB, resizing to the
requested size by A1111's resize modes (0 just resize, 1 crop and resize, 2 resize and fill; 3, the
latent upscale, resizes after encoding), and encoding to VAE latents."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from pipelines.errors import ValidationError

BACKGROUND = (255, 255, 255)  # what transparent pixels become (A1111's default img2img background)
RESAMPLE = Image.Resampling.LANCZOS


def to_rgb(image: Image.Image, *, field: str = "init_image") -> Image.Image:
    """An RGB copy of ``image``: alpha flattened onto white, 16/32-bit greyscale scaled to 8 bits."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        if values.max(initial=0) > 255:  # 16-bit samples; a 32-bit "I" image holds them too
            values = values / 257.0
        grey = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
        return grey.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ValidationError(field, f"image mode {image.mode!r} cannot be converted to RGB ({exc})") from exc


def _crop_and_resize(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover ``width x height`` keeping the aspect ratio, then cut the overflow evenly."""
    scale = max(width / image.width, height / image.height)
    w, h = max(width, round(image.width * scale)), max(height, round(image.height * scale))
    scaled = image.resize((w, h), RESAMPLE)
    left, top = (w - width) // 2, (h - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def _resize_and_fill(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to fit inside ``width x height``, centre it and fill the bands by stretching its edges."""
    scale = min(width / image.width, height / image.height)
    w, h = min(width, max(1, round(image.width * scale))), min(height, max(1, round(image.height * scale)))
    scaled = image.resize((w, h), RESAMPLE)
    canvas = Image.new("RGB", (width, height))
    left, top = (width - w) // 2, (height - h) // 2
    canvas.paste(scaled, (left, top))
    if top > 0:  # bands above and below: the first and last rows, stretched
        canvas.paste(scaled.crop((0, 0, w, 1)).resize((w, top)), (left, 0))
        bottom = height - top - h
        if bottom > 0:
            canvas.paste(scaled.crop((0, h - 1, w, h)).resize((w, bottom)), (left, top + h))
    if left > 0:  # bands left and right: the first and last columns, stretched
        canvas.paste(scaled.crop((0, 0, 1, h)).resize((left, h)), (0, top))
        right = width - left - w
        if right > 0:
            canvas.paste(scaled.crop((w - 1, 0, w, h)).resize((right, h)), (left + w, top))
    return canvas


def resize_image(image: Image.Image, width: int, height: int, resize_mode: int) -> Image.Image:
    """``image`` (RGB) at exactly ``width x height`` by A1111's ``resize_mode`` 0, 1 or 2."""
    if image.size == (width, height):
        return image
    if resize_mode == 0:
        return image.resize((width, height), RESAMPLE)
    if resize_mode == 1:
        return _crop_and_resize(image, width, height)
    if resize_mode == 2:
        return _resize_and_fill(image, width, height)
    raise ValidationError("resize_mode", f"{resize_mode!r} is not available; use 0, 1 or 2")


def prepare_init_image(image: Image.Image, width: int, height: int, resize_mode: int) -> Image.Image:
    return resize_image(to_rgb(image), width, height, resize_mode)


def prepare_mask_image(mask: Image.Image, width: int, height: int, resize_mode: int) -> Image.Image:
    """An ``L`` mask resized exactly as :func:`prepare_init_image` resizes its image."""
    return resize_image(mask.convert("RGB"), width, height, resize_mode).convert("L")


def size_multiple_of_8(image: Image.Image) -> Image.Image:
    """``image`` at its own size rounded to multiples of 8 (at least 8), as the VAE needs."""
    size = tuple(max(8, round(side / 8) * 8) for side in image.size)
    return image if size == image.size else image.resize(size, RESAMPLE)


def encode_latents(pipe: Any, pixels: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Scaled VAE latents of ``pixels`` (1, 3, H, W in [-1, 1]), one sample per generator, drawn as
    diffusers draws them when it encodes an init image itself."""
    vae = pipe.vae
    batch = pixels.to(device=vae.device, dtype=vae.dtype).repeat(len(generators), 1, 1, 1)
    return vae.encode(batch).latent_dist.sample(generator=generators) * vae.config.scaling_factor
