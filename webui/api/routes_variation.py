"""Atelier's image-variation route (pipelines/modes/variation.py) under ``/atelier/v1``, behind the API's login.

``POST /atelier/v1/image-variation`` takes a base64 ``image`` and the usual sampling fields (A1111's names) and
returns new pictures drawn from the image's CLIP embedding by an installed image-variation model
(``variation_model``: its name; null: the first one), as base64 PNGs with their infotexts. A Stable unCLIP model
also takes ``noise_level`` (0 to its noising steps - 1; other models take 0 only), a ``prompt`` and a
``negative_prompt``. No model installed, or a bad field, is a 422 naming the field.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.requests.variation import ImageVariationRequest
from webui.api.images import decode_image, encode_png
from webui.api.models import ApiModel
from webui.owners import api_owner


class ImageVariationBody(ApiModel):
    image: str
    variation_model: str | None = None
    noise_level: int = 0  # Stable unCLIP only: noise added to the image embedding
    prompt: str = ""  # Stable unCLIP only
    negative_prompt: str = ""  # Stable unCLIP only
    seed: int = -1
    sampler_name: str = samplers.DEFAULT_SAMPLER
    scheduler: str = "Automatic"
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    batch_size: int = 1
    n_iter: int = 1
    save_images: bool = True


class ImageVariationResponse(ApiModel):
    images: list[str]  # base64 PNGs, each with its infotext
    info: str  # a JSON string, as A1111's ``info``: seeds, infotexts, the model


def add_variation_routes(router: APIRouter, ctx: AppContext) -> None:
    """``/image-variation`` on the /atelier/v1 router."""

    @router.post("/image-variation", response_model=ImageVariationResponse)
    def image_variation(body: ImageVariationBody, caller: Request) -> ImageVariationResponse:
        """Variations of ``image`` from its CLIP image embedding (DALL·E 2's idea, on Stable Diffusion)."""
        fields = body.model_dump(exclude={"image"})
        request = ImageVariationRequest(image=decode_image(body.image, "image"), **fields)
        request.validate()
        result = ctx.engine.generate(request, owner=api_owner(caller))
        return ImageVariationResponse(images=[encode_png(img.image, img.infotext) for img in result.images],
                                      info=json.dumps(result.info))
