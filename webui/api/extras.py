"""The extras endpoints: A1111's ``extra-single-image`` and ``extra-batch-images`` -> :class:`ExtrasRequest`.

Images are decoded naming their field (``image``, ``imageList.N.data``); upscaler names are checked
against the installed upscalers before any work (422 naming ``upscaler_1``/``upscaler_2``); face
restoration is refused with 422 because Atelier has none. ``html_info`` is the first image's
infotext as HTML, like A1111's.
"""

from __future__ import annotations

import html
from typing import Any

from pipelines.errors import ValidationError
from pipelines.requests import ExtrasRequest
from pipelines.results import GenerationResult
from webui.api.images import decode_image, encode_png
from webui.api.models import ExtrasBaseRequest, ExtrasBatchImagesRequest, ExtrasSingleImageRequest


def refuse_face_restoration(body: ExtrasBaseRequest) -> None:
    for field in ("gfpgan_visibility", "codeformer_visibility"):
        if getattr(body, field):
            raise ValidationError(field, "face restoration is not available in Atelier; send 0")


def extras_request(body: ExtrasBaseRequest, images: list[Any], names: list[str]) -> ExtrasRequest:
    refuse_face_restoration(body)
    return ExtrasRequest(
        images=tuple(images), image_names=tuple(names), resize_mode=body.resize_mode,
        upscaling_resize=body.upscaling_resize, upscaling_resize_w=body.upscaling_resize_w,
        upscaling_resize_h=body.upscaling_resize_h, upscaling_crop=body.upscaling_crop,
        upscaler_1=body.upscaler_1, upscaler_2=body.upscaler_2,
        extras_upscaler_2_visibility=body.extras_upscaler_2_visibility,
        save_images=True,  # A1111 saves extras results (outputs/extras-images)
    )


def single_image_request(body: ExtrasSingleImageRequest) -> ExtrasRequest:
    if not body.image.strip():
        raise ValidationError("image", "an image is required (base64 or a data: URI)")
    return extras_request(body, [decode_image(body.image, "image")], [])


def batch_request(body: ExtrasBatchImagesRequest) -> ExtrasRequest:
    if not body.imageList:
        raise ValidationError("imageList", "at least one image ({data, name}) is required")
    images = [decode_image(item.data, f"imageList.{i}.data") for i, item in enumerate(body.imageList)]
    return extras_request(body, images, [item.name for item in body.imageList])


def html_info(result: GenerationResult) -> str:
    text = result.images[0].infotext if result.images else ""
    return f"<p>{html.escape(text)}</p>" if text else ""


def encoded_images(result: GenerationResult) -> list[str]:
    return [encode_png(img.image, img.infotext or None) for img in result.images]
