"""img2img over the API: A1111's ``StableDiffusionImg2ImgProcessingAPI`` -> :class:`Img2ImgRequest`.

Everything but the image goes through the txt2img code path (:mod:`webui.api.generation`); this
module adds the init image (the first of ``init_images``; missing -> 404 "Init image not found",
as in A1111) and refuses the inpainting fields until that mode lands.
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import ValidationError
from pipelines.options import OptionsStore
from pipelines.requests import Img2ImgRequest
from pipelines.results import GenerationResult
from webui.api.errors import ApiError
from webui.api.generation import core_request, generation_response
from webui.api.images import decode_image
from webui.api.models import ImageToImageResponse
from webui.api.models import StableDiffusionImg2ImgProcessingAPI as Img2ImgBody


def refuse_inpainting(body: Img2ImgBody) -> None:
    for field in ("mask", "latent_mask"):
        if getattr(body, field):
            raise ValidationError(field, "inpainting is not available yet; send img2img without a mask")
    if body.initial_noise_multiplier not in (None, 1, 1.0):
        raise ValidationError("initial_noise_multiplier", "only 1 is supported yet")


def init_image(body: Img2ImgBody) -> Any:
    """The first init image, decoded; A1111 answers 404 when there is none."""
    images = [data for data in body.init_images or [] if data]
    if not images:
        raise ApiError(404, "Init image not found", error="HTTPException", errors="init_images: Init image not found")
    return decode_image(images[0], "init_images.0")


def to_img2img_request(body: Img2ImgBody, options: OptionsStore) -> Img2ImgRequest:
    """The core request for ``body`` (after ``apply_infotext``); raises naming the bad field."""
    image = init_image(body)
    refuse_inpainting(body)
    return core_request(
        body, options, Img2ImgRequest,
        init_image=image,
        denoising_strength=float(0.75 if body.denoising_strength is None else body.denoising_strength),
        resize_mode=0 if body.resize_mode is None else body.resize_mode,
    )


def img2img_response(body: Img2ImgBody, request: Img2ImgRequest, result: GenerationResult,
                     job_timestamp: str) -> ImageToImageResponse:
    parameters = body.model_dump()
    if not body.include_init_images:  # as A1111: the (large) input images are not echoed back
        parameters["init_images"] = None
        parameters["mask"] = None
    return generation_response(body, request, result, job_timestamp, response_cls=ImageToImageResponse,
                               parameters=parameters)
