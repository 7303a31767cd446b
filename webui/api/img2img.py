"""img2img over the API: A1111's ``StableDiffusionImg2ImgProcessingAPI`` -> :class:`Img2ImgRequest`.

Everything but the image goes through the txt2img code path (:mod:`webui.api.generation`); this
module adds the init image (the first of ``init_images``; missing -> 404 "Init image not found",
as in A1111) and the inpainting fields: ``mask`` (base64, white = repaint), ``mask_blur`` (else
``mask_blur_x``), ``inpainting_fill``, ``inpaint_full_res``, ``inpaint_full_res_padding`` and
``inpainting_mask_invert``, with A1111's API defaults (fill, "Only masked", padding 0). ``latent_mask``
and ``initial_noise_multiplier`` other than 1 are refused with 422 rather than ignored.
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import ValidationError
from pipelines.options import OptionsStore
from pipelines.requests import Img2ImgRequest
from pipelines.results import GenerationResult
from webui.api.errors import ApiError
from webui.api.generation import core_request, generation_response, refiner_of
from webui.api.images import decode_image
from webui.api.models import ImageToImageResponse
from webui.api.models import StableDiffusionImg2ImgProcessingAPI as Img2ImgBody


def refuse_unsupported_inpainting(body: Img2ImgBody) -> None:
    refiner_of(body, mode="img2img")  # the refiner is txt2img's: a named one is refused here
    if body.latent_mask:
        raise ValidationError("latent_mask", "a separate latent mask is not supported; send only `mask`")
    if body.initial_noise_multiplier not in (None, 1, 1.0):
        raise ValidationError("initial_noise_multiplier", "only 1 is supported yet")


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def inpainting_fields(body: Img2ImgBody) -> dict[str, Any]:
    """The request's inpainting fields; empty without a mask (the other fields are then unused, as in A1111)."""
    if not body.mask:
        return {}
    return {
        "mask": decode_image(body.mask, "mask"),
        "mask_blur": _default(body.mask_blur, _default(body.mask_blur_x, 4)),
        "inpainting_fill": _default(body.inpainting_fill, 0),
        "inpaint_full_res": _default(body.inpaint_full_res, True),
        "inpaint_full_res_padding": _default(body.inpaint_full_res_padding, 0),
        "inpainting_mask_invert": _default(body.inpainting_mask_invert, 0),
    }


def init_image(body: Img2ImgBody) -> Any:
    """The first init image, decoded; A1111 answers 404 when there is none."""
    images = [data for data in body.init_images or [] if data]
    if not images:
        raise ApiError(404, "Init image not found", error="HTTPException", errors="init_images: Init image not found")
    return decode_image(images[0], "init_images.0")


def to_img2img_request(body: Img2ImgBody, options: OptionsStore) -> Img2ImgRequest:
    """The core request for ``body`` (after ``apply_infotext``); raises naming the bad field."""
    image = init_image(body)
    refuse_unsupported_inpainting(body)
    return core_request(
        body, options, Img2ImgRequest,
        init_image=image,
        denoising_strength=float(0.75 if body.denoising_strength is None else body.denoising_strength),
        resize_mode=0 if body.resize_mode is None else body.resize_mode,
        **inpainting_fields(body),
    )


def img2img_response(body: Img2ImgBody, request: Img2ImgRequest, result: GenerationResult,
                     job_timestamp: str) -> ImageToImageResponse:
    parameters = body.model_dump()
    if not body.include_init_images:  # as A1111: the (large) input images are not echoed back
        parameters["init_images"] = None
        parameters["mask"] = None
    return generation_response(body, request, result, job_timestamp, response_cls=ImageToImageResponse,
                               parameters=parameters)
