"""Atelier's Imagine routes (pipelines/imagine.py) under ``/atelier/v1``, behind the API's login.

``POST /atelier/v1/imagine`` takes any txt2img field (A1111's names; ``batch_size`` 4 by default) and returns the
batch's grid and its images with their seeds; ``POST /atelier/v1/imagine/action`` runs U (``upscale``), V
(``vary_subtle`` / ``vary_strong``) or ``reroll`` on one image of a result, named by its ``path`` (inside the
outputs folder). Images are always saved (the flow works on files); ``send_images`` adds their base64 PNGs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fastapi import APIRouter, Request
from PIL import Image

from pipelines.actions import UPSCALE_FACTOR, image_infotext
from pipelines.context import AppContext
from pipelines.errors import ValidationError
from pipelines.imagine import DEFAULT_BATCH, action_request, imagine_request
from pipelines.requests import GenerationRequest
from pipelines.results import GeneratedImage, GenerationResult
from webui.api.errors import naming_model_field
from webui.api.generation import apply_infotext, to_core_request
from webui.api.images import encode_png
from webui.api.models import ApiModel
from webui.api.models import StableDiffusionTxt2ImgProcessingAPI as Txt2ImgBody
from webui.owners import api_owner


class ImagineBody(Txt2ImgBody):
    """``POST /atelier/v1/imagine``: a txt2img body whose batch is a grid of 4 by default."""

    batch_size: int | None = DEFAULT_BATCH


class ImagineActionBody(ApiModel):
    """``POST /atelier/v1/imagine/action``: an action on one image of an Imagine result."""

    action: str  # upscale, vary_subtle, vary_strong or reroll
    source: str  # the image's path as a result gave it (relative to the outputs folder, or absolute inside it)
    factor: float = UPSCALE_FACTOR  # upscale only
    batch_size: int = DEFAULT_BATCH  # vary and reroll: images in the new grid
    send_images: bool = True


class ImagineImage(ApiModel):
    path: str | None  # relative to the outputs folder; None when it was not saved (grid_save off)
    seed: int
    image: str | None = None  # base64 PNG with its infotext, when send_images


class ImagineResponse(ApiModel):
    grid: ImagineImage | None  # None for a single image (an upscale, a batch of 1)
    images: list[ImagineImage]
    info: str  # the first image's infotext


def _relative(path: Path | None, outputs: Path) -> str | None:
    if path is None:
        return None
    return path.resolve().relative_to(outputs.resolve()).as_posix()


def _response(result: GenerationResult, outputs: Path, send_images: bool) -> ImagineResponse:
    def item(image: GeneratedImage) -> ImagineImage:
        return ImagineImage(path=_relative(image.path, outputs), seed=image.seed,
                            image=encode_png(image.image, image.infotext) if send_images else None)

    return ImagineResponse(grid=item(result.grid) if result.grid is not None else None,
                           images=[item(img) for img in result.images],
                           info=result.images[0].infotext if result.images else "")


def source_image(outputs: Path, source: str) -> tuple[Image.Image, str]:
    """The image file ``source`` names inside ``outputs`` and its infotext; a ValidationError naming "source"."""
    root = outputs.resolve()
    path = (root / source).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ValidationError("source", f"{source!r} is not an image inside the outputs folder")
    try:
        with Image.open(path) as opened:
            return opened.copy(), image_infotext(opened)
    except (OSError, ValueError) as exc:
        raise ValidationError("source", f"{source!r} cannot be read as an image ({exc})") from exc


def add_imagine_routes(router: APIRouter, ctx: AppContext) -> None:
    """``/imagine`` and ``/imagine/action`` on the /atelier/v1 router."""
    outputs = ctx.settings.outputs_dir
    options = ctx.options

    @router.post("/imagine", response_model=ImagineResponse)
    def imagine(body: ImagineBody, caller: Request) -> ImagineResponse:
        """A batch (4 by default) from a prompt at the given txt2img settings: its grid and images, all saved."""
        body = apply_infotext(body, ctx.store)
        with naming_model_field("override_settings.sd_model_checkpoint"):
            request = imagine_request(to_core_request(body, options), body.batch_size or DEFAULT_BATCH)
            result = ctx.engine.generate(request, owner=api_owner(caller))
        return _response(result, outputs, bool(body.send_images))

    @router.post("/imagine/action", response_model=ImagineResponse)
    def imagine_action(body: ImagineActionBody, caller: Request) -> ImagineResponse:
        """U (upscale at ``factor``), V (vary_subtle / vary_strong into a new grid) or reroll (the prompt again
        with new seeds) on the image at ``source``."""
        image, infotext = source_image(outputs, body.source)
        job = action_request(body.action, image, infotext, upscaler=ctx.upscalers.default_name(), store=ctx.store,
                             factor=body.factor, batch_size=body.batch_size)
        if isinstance(job, GenerationRequest):  # the options' prompt and grid settings, as for /sdapi jobs
            job = replace(job, **options.prompt_settings(), **options.grid_settings(), sd_vae=options.sd_vae(),
                          **options.decoder_settings())
        result = ctx.engine.generate(job, owner=api_owner(caller))
        return _response(result, outputs, body.send_images)
