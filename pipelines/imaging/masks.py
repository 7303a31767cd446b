"""Inpainting masks: reading, inverting and blurring them, the "Only masked" crop region, pre-filling
the masked area, and putting a generated image back over the original.

Conventions: a mask is an ``L`` image where 255 means "repaint" and 0 means "keep". Boxes are
``(left, top, right, bottom)`` in pixels, right/bottom exclusive, as Pillow's ``crop`` takes them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from pipelines.errors import ValidationError
from pipelines.imaging.image_ops import resize_image

Box = tuple[int, int, int, int]
THRESHOLD = 128  # grey values from here up count as masked (A1111 rounds its masks the same way)
ASPECT_TOLERANCE = 0.02  # a mask may differ from its image in size, not (beyond rounding) in shape


def to_mask(image: Image.Image) -> Image.Image:
    """A binary ``L`` mask from any image: the alpha of an image with transparent pixels (a painted
    layer), otherwise its brightness; then 0 or 255 at :data:`THRESHOLD`."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        grey = alpha if alpha.getextrema()[0] < 255 else image.convert("L")
    elif image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        if values.max(initial=0) > 255:  # 16-bit samples, scaled to 8 bits as the init image is
            values = values / 257.0
        grey = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
    else:
        grey = image.convert("L")
    return grey.point(lambda v: 255 if v >= THRESHOLD else 0)


def prepare_mask(image: Image.Image, size: tuple[int, int], *, invert: bool) -> Image.Image:
    """The binary mask at ``size`` (the init image's), inverted when asked."""
    mask = to_mask(image)
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.NEAREST)
    return ImageChops.invert(mask) if invert else mask


def check_mask(image: object, init_size: tuple[int, int], *, invert: bool) -> None:
    """Raise :class:`ValidationError` (field ``mask``) unless ``image`` is a usable mask for an init
    image of ``init_size``: an image, of the same shape, masking at least one pixel."""
    if not hasattr(image, "size") or not hasattr(image, "convert"):
        raise ValidationError("mask", f"must be an image, got {type(image).__name__}")
    (mw, mh), (iw, ih) = image.size, init_size
    if min(mw, mh) < 1:
        raise ValidationError("mask", f"is empty ({mw}x{mh})")
    if abs(mw / mh - iw / ih) > ASPECT_TOLERANCE * (iw / ih):
        raise ValidationError("mask", f"is {mw}x{mh} but the init image is {iw}x{ih}; the mask must have the "
                              "image's shape (it is resized with the image)")
    mask = prepare_mask(image, init_size, invert=invert)
    if mask.getextrema()[1] == 0:
        if invert:
            raise ValidationError("mask", "is entirely white, so inverting it (inpainting_mask_invert=1) leaves "
                                  "nothing to repaint")
        raise ValidationError("mask", "is entirely black: nothing to repaint (paint the area to change in white)")


def blur(mask: Image.Image, radius: int) -> Image.Image:
    """The mask with a soft edge (Pillow's Gaussian blur; ``radius`` is its standard deviation)."""
    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask.copy()


def overlay_mask(blurred: Image.Image) -> Image.Image:
    """How much of the generated image each pixel takes: the blurred mask doubled (as A1111 does),
    so everything the model repainted (the blurred mask's >= 50 % area) is fully taken and the
    blend happens in the outer half of the soft edge. 0 stays 0: unmasked pixels keep the original."""
    return blurred.point(lambda v: min(255, 2 * v))


def composite(generated: Image.Image, original: Image.Image, mask: Image.Image) -> Image.Image:
    """``generated`` where ``mask`` is white, ``original`` where it is black, blended in between."""
    return Image.composite(generated.convert("RGB"), original.convert("RGB"), mask)


def bounding_box(mask: Image.Image) -> Box | None:
    """The smallest box holding every non-zero pixel of ``mask``; None for an all-black mask."""
    return mask.getbbox()


def crop_region(mask: Image.Image, padding: int, width: int, height: int) -> Box | None:
    """The "Only masked" region: the mask's box grown by ``padding`` on each side, then grown along
    one axis to the ``width:height`` aspect of the generation size, all within the image."""
    box = bounding_box(mask)
    if box is None:
        return None
    iw, ih = mask.size
    left, top, right, bottom = box
    box = (max(0, left - padding), max(0, top - padding), min(iw, right + padding), min(ih, bottom + padding))
    return expand_to_aspect(box, width / height, (iw, ih))


def _grow(start: int, end: int, length: int, limit: int) -> tuple[int, int]:
    """``start..end`` grown evenly to ``length`` (at most ``limit``), shifted back inside ``0..limit``."""
    length = min(length, limit)
    extra = length - (end - start)
    start -= extra // 2
    end += extra - extra // 2
    if start < 0:
        start, end = 0, end - start
    if end > limit:
        start, end = start - (end - limit), limit
    return max(0, start), end


def expand_to_aspect(box: Box, aspect: float, image_size: tuple[int, int]) -> Box:
    """``box`` grown along its short side so that width / height is ``aspect`` (as near as the
    image's edges allow)."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    if w / h < aspect:
        left, right = _grow(left, right, round(h * aspect), image_size[0])
    else:
        top, bottom = _grow(top, bottom, round(w / aspect), image_size[1])
    return left, top, right, bottom


def paste_back(original: Image.Image, generated: Image.Image, box: Box, mask: Image.Image) -> Image.Image:
    """``generated`` (the crop at generation size) scaled back onto ``box`` of ``original`` and
    blended in with ``mask`` (full size): pixels the mask leaves black stay exactly the original.
    The crop went in by "resize and fill" (mode 2), so it comes back by "crop and resize" (mode 1)."""
    left, top, right, bottom = box
    piece = resize_image(generated.convert("RGB"), right - left, bottom - top, 1)
    pasted = original.convert("RGB")  # a copy: convert always returns a new image
    pasted.paste(piece, (left, top))
    return composite(pasted, original, mask)


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's "fill": the masked area painted with the colours around it, so the model starts from
    a smooth guess rather than from what was there. Each masked pixel gets the weighted mean of the
    unmasked pixels near it (a normalized blur, coarse to fine); far from any, the image's mean."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    keep = (np.asarray(mask, dtype=np.float64) < THRESHOLD).astype(np.float64)
    if keep.sum() == 0:  # nothing to take colours from: a neutral grey
        return Image.new("RGB", image.size, (128, 128, 128))
    filled = np.broadcast_to(pixels[keep > 0].mean(axis=0), pixels.shape).copy()
    radius = max(image.size) // 2
    while radius >= 2:
        weight = _box_blur(keep, radius)
        colour = _box_blur(pixels * keep[..., None], radius)
        reached = weight > 1e-6
        filled[reached] = colour[reached] / weight[reached][..., None]
        radius //= 2
    soft = np.asarray(mask, dtype=np.float64)[..., None] / 255.0
    out = pixels * (1 - soft) + filled * soft
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode="RGB")


def _box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 * radius + 1) square window, edges clipped (summed-area table)."""
    h, w = values.shape[:2]
    table = np.zeros((h + 1, w + 1) + values.shape[2:])
    table[1:, 1:] = values.cumsum(0).cumsum(1)
    ys, xs = np.arange(h), np.arange(w)
    y0, y1 = np.clip(ys - radius, 0, h), np.clip(ys + radius + 1, 0, h)
    x0, x1 = np.clip(xs - radius, 0, w), np.clip(xs + radius + 1, 0, w)
    total = table[y1][:, x1] - table[y0][:, x1] - table[y1][:, x0] + table[y0][:, x0]
    area = ((y1 - y0)[:, None] * (x1 - x0)[None, :]).astype(np.float64)
    return total / (area[..., None] if values.ndim == 3 else area)
