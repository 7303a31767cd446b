"""One-click actions on a finished image: Midjourney's Vary and Upscale, A1111's "send to".

An action starts from the image itself and the infotext it carries, so it works the
same on an image the app just made and on a file dropped into PNG Info. This module
only builds requests; the engine runs them like any other.

The numbers are facts users may know from other tools:

* Vary (subtle) / Vary (strong) are img2img at denoising strength 0.5 / 0.85, the values
  Fooocus uses for its "Vary (Subtle)" and "Vary (Strong)", with a new random seed.
* Upscale is 2x, as Midjourney's Upscale buttons (A1111's Extras tab defaults to 4x;
  the Upscale tab keeps that default for its own slider).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pipelines.errors import ValidationError
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.paste import PastedParameters, paste_img2img_parameters, to_img2img_request
from pipelines.infotext.png_info import read_image_metadata
from pipelines.requests import MAX_SEED, Img2ImgRequest

if TYPE_CHECKING:
    from pipelines.models.store import ModelStore

VARY_DENOISING_STRENGTH: Mapping[str, float] = MappingProxyType({"subtle": 0.5, "strong": 0.85})
UPSCALE_FACTOR = 2.0
SIZE_STEP = 8  # img2img sizes are multiples of 8 (the VAE's downscale factor)


def image_infotext(image: Any) -> str:
    """The infotext an opened image carries (PNG chunk, EXIF UserComment, NovelAI/Fooocus metadata), or ""."""
    return read_image_metadata(image).parameters or ""


def image_size_for_request(image: Any) -> tuple[int, int]:
    """The image's own size, rounded down to multiples of 8 (at least 64), for an img2img request."""
    width, height = image.size
    return max(64, width - width % SIZE_STEP), max(64, height - height % SIZE_STEP)


def new_seed(avoid: int, rng: random.Random | None = None) -> int:
    """A random seed that differs from ``avoid`` (the source image's seed)."""
    draw = rng or random.Random()
    while True:
        seed = draw.randint(0, MAX_SEED)
        if seed != avoid:
            return seed


def img2img_from_image(image: Any, infotext: str, store: ModelStore | None = None,
                       base: Img2ImgRequest | None = None) -> tuple[Img2ImgRequest, PastedParameters]:
    """An img2img request starting from ``image`` with the settings its infotext names.

    Fields the infotext does not name come from ``base`` (the defaults without it); the
    size is always the image's own, so nothing is stretched. With a ``store`` the
    checkpoint the image names is selected when it is installed.
    """
    pasted = paste_img2img_parameters(parse_infotext(infotext), store)
    width, height = image_size_for_request(image)
    start = replace(base or Img2ImgRequest(), init_image=image)
    return replace(to_img2img_request(pasted, start), width=width, height=height), pasted


def vary_request(image: Any, strength: str, *, infotext: str | None = None, store: ModelStore | None = None,
                 rng: random.Random | None = None) -> Img2ImgRequest:
    """Vary (subtle) or Vary (strong): img2img of ``image`` with its own prompt and settings.

    The seed is new and random; batch count is 1 and the batch size is the original's,
    so a batch of four varies into four.
    """
    # 1. The strength by name: "subtle" or "strong"
    if strength not in VARY_DENOISING_STRENGTH:
        raise ValidationError("strength", f"must be one of {', '.join(VARY_DENOISING_STRENGTH)}, got {strength!r}")
    if image is None:
        raise ValidationError("init_image", "select an image to vary")
    # 2. The image's own prompt and settings, read from its infotext
    text = image_infotext(image) if infotext is None else infotext
    request, _ = img2img_from_image(image, text, store)
    # 3. A new seed, the Vary strength, one batch
    return replace(request, seed=new_seed(request.seed, rng), n_iter=1,
                   denoising_strength=VARY_DENOISING_STRENGTH[strength])


def seed_of(infotext: str) -> int | None:
    """The ``Seed`` an infotext names, or None (for "Reuse seed")."""
    raw = parse_infotext(infotext).get("Seed", "").strip()
    try:
        seed = int(raw)
    except ValueError:
        return None
    return seed if 0 <= seed <= MAX_SEED else None
