"""inpaint: img2img inside a mask, on the loaded model's modules (A1111's img2img with a mask).

diffusers' inpaint pipelines run it: ``StableDiffusionInpaintPipeline`` (``...XLInpaintPipeline``)
built over the loaded modules. With an ordinary 4-channel UNet diffusers blends the original's
latents back outside the mask after every step; a dedicated 9-channel inpainting UNet instead
reads the mask and the masked image as extra input channels. Both go through the same call.

Masked content (``inpainting_fill``): "original" hands diffusers the image as it is; "fill" paints
the masked area with the surrounding colours first (:func:`pipelines.imaging.masks.fill_masked`); "latent
noise" and "latent nothing" encode the image here, replace the masked latents with seeded noise or
zeros, and pass those latents as ``image`` (diffusers takes a 4-channel tensor there as ready
latents) plus ``masked_image_latents``. Afterwards each image is blended back over the original
with the blurred mask, so unmasked pixels keep their exact original values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from pipelines.errors import UnsupportedModelError, ValidationError
from pipelines.imaging import masks
from pipelines.imaging.image_ops import encode_latents, prepare_init_image, prepare_mask_image, resize_image, to_rgb
from pipelines.lazy_diffusers import diffusers_attr
from pipelines.modes.common import (
    BatchInputs,
    InfotextParams,
    JobContext,
    SecondPass,
    base_params,
    generators,
    run_batches,
    tail_params,
)
from pipelines.requests import INPAINTING_FILL, Img2ImgRequest
from pipelines.results import GenerationResult

INPAINT_CLASSES = {  # loaded pipeline class -> the inpaint pipeline over the same modules
    "StableDiffusionPipeline": "StableDiffusionInpaintPipeline",
    "StableDiffusionInpaintPipeline": "StableDiffusionInpaintPipeline",
    "StableDiffusionXLPipeline": "StableDiffusionXLInpaintPipeline",
    "StableDiffusionXLInpaintPipeline": "StableDiffusionXLInpaintPipeline",
}
FILL, ORIGINAL, LATENT_NOISE, LATENT_NOTHING = 0, 1, 2, 3


def inpaint_class(base: Any) -> type:
    name = INPAINT_CLASSES.get(type(base).__name__)
    if name is None:
        raise UnsupportedModelError(f"inpainting does not run on {type(base).__name__} models")
    return diffusers_attr(name)


def is_inpainting_model(base: Any) -> bool:
    """A dedicated inpainting checkpoint: its UNet reads latents + mask + masked image (4 + 1 + 4)."""
    unet = getattr(base, "unet", None)
    return unet is not None and unet.config.in_channels == 9


@dataclass(frozen=True)
class Canvas:
    """One job's inputs, prepared once for all its batches."""

    image: Image.Image  # RGB at width x height: what the model starts from (pre-filled for "fill")
    mask: Image.Image  # L at width x height, blurred; diffusers binarizes it at 50 %
    original: Image.Image  # RGB the results are put back onto (at the output size)
    overlay: Image.Image  # L at the output size: how much of the generated image each pixel takes
    box: masks.Box | None  # "Only masked": the region of ``original`` that was repainted


def _masked_content(request: Img2ImgRequest) -> int:
    return request.inpainting_fill if request.mask is not None else ORIGINAL


def _whole_picture(request: Img2ImgRequest) -> Canvas:
    """The image and mask resized to width x height by the resize mode; the result has that size."""
    image = prepare_init_image(request.init_image, request.width, request.height, request.resize_mode)
    mask = masks.prepare_mask(request.mask, request.init_image.size, invert=bool(request.inpainting_mask_invert))
    mask = masks.to_mask(prepare_mask_image(mask, request.width, request.height, request.resize_mode))
    blurred = masks.blur(mask, request.mask_blur)
    return Canvas(image, blurred, image, masks.overlay_mask(blurred), None)


def _only_masked(request: Img2ImgRequest) -> Canvas:
    """A crop around the mask, scaled to width x height; the result keeps the init image's size."""
    original = to_rgb(request.init_image)
    mask = masks.prepare_mask(request.mask, original.size, invert=bool(request.inpainting_mask_invert))
    blurred = masks.blur(mask, request.mask_blur)
    box = masks.crop_region(blurred, request.inpaint_full_res_padding, request.width, request.height)
    image = resize_image(original.crop(box), request.width, request.height, 2)
    crop_mask = prepare_mask_image(blurred.crop(box), request.width, request.height, 2)
    return Canvas(image, crop_mask, original, masks.overlay_mask(blurred), box)


def prepare_canvas(request: Img2ImgRequest) -> Canvas:
    """Image, mask and paste-back target for ``request``; without a mask (img2img on a 9-channel
    inpainting model) the whole image is masked, which is img2img for such a model."""
    if request.mask is None:
        image = prepare_init_image(request.init_image, request.width, request.height, request.resize_mode)
        white = Image.new("L", image.size, 255)
        return Canvas(image, white, image, white, None)
    canvas = _only_masked(request) if request.inpaint_full_res else _whole_picture(request)
    if request.inpainting_fill == FILL:
        return Canvas(masks.fill_masked(canvas.image, canvas.mask), canvas.mask, canvas.original, canvas.overlay,
                      canvas.box)
    return canvas


def put_back(canvas: Canvas, generated: Image.Image) -> Image.Image:
    """A generated image blended over the original: unmasked pixels stay exactly the original."""
    if canvas.box is None:
        return masks.composite(generated, canvas.original, canvas.overlay)
    return masks.paste_back(canvas.original, generated, canvas.box, canvas.overlay)


def latent_fill(canvas: Canvas, request: Img2ImgRequest) -> BatchInputs:
    """``batch_inputs`` for "latent noise" / "latent nothing": the init latents with the masked cells
    replaced by noise (drawn from each image's seed) or zeros, and the masked image's latents."""
    fill = request.inpainting_fill

    def inputs(pipe: Any, seeds: list[int]) -> dict[str, Any]:
        gens = generators(seeds)  # generators of their own: the pipeline's draw the same noise as ever
        pixels = pipe.image_processor.preprocess(canvas.image, height=request.height, width=request.width)
        mask = pipe.mask_processor.preprocess(canvas.mask, height=request.height, width=request.width)
        latents = encode_latents(pipe, pixels, gens)
        cells = F.interpolate(mask, size=latents.shape[-2:]).to(latents)  # as diffusers shrinks the mask
        if fill == LATENT_NOISE:
            noise = torch.cat([torch.randn((1, *latents.shape[1:]), generator=g) for g in gens]).to(latents)
            latents = latents * (1 - cells) + noise * cells
        else:
            latents = latents * (1 - cells)
        masked_image = encode_latents(pipe, pixels * (mask < 0.5), gens)
        return {"image": latents, "masked_image_latents": masked_image}

    return inputs


def mask_params(request: Img2ImgRequest) -> dict[str, Any]:
    """A1111's inpainting infotext keys, in its order; defaults are left out as A1111 leaves them out
    (its reader fills them back in)."""
    if request.mask is None:
        return {}
    params: dict[str, Any] = {"Mask blur": request.mask_blur}
    if request.inpainting_mask_invert:
        params["Mask mode"] = "Inpaint not masked"
    if request.inpaint_full_res:
        params["Inpaint area"] = "Only masked"
        params["Masked area padding"] = request.inpaint_full_res_padding
    if request.inpainting_fill != ORIGINAL:
        params["Masked content"] = INPAINTING_FILL[request.inpainting_fill]
    return params


def infotext_params(extra: dict[str, Any]) -> InfotextParams:
    def params(request: Img2ImgRequest, ctx: JobContext, seed: int, batch_pos: int) -> dict[str, Any]:
        return {**base_params(request, ctx, seed), "Denoising strength": request.denoising_strength,
                **tail_params(request, ctx, batch_pos, extra={**mask_params(request), **extra})}

    return params


@torch.inference_mode()
def run(request: Img2ImgRequest, ctx: JobContext, *, extra_infotext: dict[str, Any] | None = None) -> GenerationResult:
    # 1. Check inputs and pick the inpaint pipeline class for the loaded model
    request.validate()
    cls = inpaint_class(ctx.loaded.pipeline)
    if request.resize_mode == 3:  # only reachable without a mask, i.e. img2img on an inpainting model
        raise ValidationError("resize_mode", "3 (latent upscale) does not run on inpainting models; use 0, 1 or 2")
    # 2. Image, mask and paste-back target at the generation size (a crop for "Only masked")
    canvas = prepare_canvas(request)
    # 3. What the model starts from: the (pre-filled) image, or latents with the masked cells replaced
    call_kwargs: dict[str, Any] = {"mask_image": canvas.mask, "strength": request.denoising_strength,
                                   "width": request.width, "height": request.height}
    batch_inputs = None
    if _masked_content(request) in (LATENT_NOISE, LATENT_NOTHING):
        batch_inputs = latent_fill(canvas, request)
    else:
        call_kwargs["image"] = [canvas.image] * request.batch_size
    # 4. Batches on a per-job view of the loaded modules; each image is put back over the original
    paste = SecondPass(steps=0, run=lambda _pipe, images, _seeds, _text: [put_back(canvas, i) for i in images])
    return run_batches(
        request, ctx,
        pipeline_cls=cls,
        call_kwargs=call_kwargs,
        denoising_steps=request.denoising_steps,
        infotext_params=infotext_params(extra_infotext or {}),
        second_pass=paste,
        batch_inputs=batch_inputs,
    )
