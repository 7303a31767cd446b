"""extras: upscale one image or a batch with one or two upscalers (A1111's "Extras" tab and API).

No checkpoint is involved (the mode is registered with ``needs_checkpoint=False``); upscaler models
come from ``ctx.upscalers``. Each image keeps its own infotext, with A1111's ``Postprocess ...``
keys added, and is saved under ``outputs/extras-images``.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from pipelines.errors import GenerationInterrupted
from pipelines.infotext.codec import format_infotext
from pipelines.infotext.png_info import read_image_metadata
from pipelines.modes.common import JobContext, save_output
from pipelines.progress import ProgressUpdate
from pipelines.requests import ExtrasRequest
from pipelines.results import GeneratedImage, GenerationResult
from pipelines.upscalers.registry import UpscalerRegistry

NO_SEED = -1  # extras images were not generated from a seed


def target_scale(request: ExtrasRequest, image: Image.Image) -> float:
    """The factor to upscale by: the one asked for, or (resize mode 1) the one that covers w x h."""
    return request.scale_for(image.size)  # the same factor validate() counted the output pixels with


def postprocess_params(request: ExtrasRequest, scale: float) -> dict[str, Any]:
    """A1111's infotext keys for an extras upscale."""
    size = f"{request.upscaling_resize_w}x{request.upscaling_resize_h}"
    params: dict[str, Any] = {}
    if request.resize_mode == 0:
        params["Postprocess upscale by"] = round(scale, 4)
    else:
        params["Postprocess upscale to"] = size
        if request.upscaling_crop:
            params["Postprocess crop to"] = size
    params["Postprocess upscaler"] = request.upscaler_1
    if uses_upscaler_2(request):
        params["Postprocess upscaler 2"] = request.upscaler_2
        params["Postprocess upscaler 2 visibility"] = round(request.extras_upscaler_2_visibility, 3)
    return params


def uses_upscaler_2(request: ExtrasRequest) -> bool:
    return request.upscaler_2 != "None" and request.extras_upscaler_2_visibility > 0


def combined_infotext(source: str | None, params: dict[str, Any]) -> str:
    """The source image's own infotext with the postprocess keys appended to its parameter line."""
    post = format_infotext("", "", params)
    if not source:
        return post
    return f"{source.rstrip()}, {post}" if post else source


def center_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    left, top = max(0, (image.width - width) // 2), max(0, (image.height - height) // 2)
    return image.crop((left, top, left + width, top + height))


def upscale_one(request: ExtrasRequest, image: Image.Image, upscalers: UpscalerRegistry, ctx: JobContext,
                text: str) -> Image.Image:
    """Upscaler 1, blended with upscaler 2 when it is visible, then the crop of resize mode 1."""
    scale = target_scale(request, image)
    job = ctx.job

    def on_tile(done: int, total: int) -> None:
        job.sampling_step, job.sampling_steps = done, total
        ctx.on_progress(ProgressUpdate(job.job, done, total, "tiles", text))

    def should_stop() -> bool:
        return job.interrupted

    result = upscalers.upscale(image, scale, request.upscaler_1, on_tile=on_tile, should_stop=should_stop)
    if uses_upscaler_2(request):
        second = upscalers.upscale(image, scale, request.upscaler_2, on_tile=on_tile, should_stop=should_stop)
        result = Image.blend(result.convert("RGB"), second.convert("RGB").resize(result.size),
                             request.extras_upscaler_2_visibility)
    if request.resize_mode == 1 and request.upscaling_crop:
        result = center_crop(result, request.upscaling_resize_w, request.upscaling_resize_h)
    return result


def run(request: ExtrasRequest, ctx: JobContext) -> GenerationResult:
    # 1. Check inputs, including the upscaler names against the installed upscalers
    assert ctx.upscalers is not None, "extras needs the upscaler registry"
    upscalers = ctx.upscalers
    request.validate(upscalers)
    ctx.job.job_count = len(request.images)
    images: list[GeneratedImage] = []
    for index, source in enumerate(request.images):
        # 2. Report which image this is; stop between images and between tiles when interrupted
        ctx.job.job_no, ctx.job.sampling_step, ctx.job.sampling_steps = index, 0, 0
        if ctx.job.interrupted:
            break
        text = f"Upscaling image {index + 1} of {len(request.images)}"
        # 3. Upscale (a no-op when upscaler 1 is "None", as in A1111)
        try:
            output = source if request.upscaler_1 == "None" else upscale_one(request, source, upscalers, ctx, text)
        except GenerationInterrupted:
            break
        # 4. The source's own infotext plus the postprocess keys; save
        params = {} if request.upscaler_1 == "None" else postprocess_params(request, target_scale(request, source))
        infotext = combined_infotext(read_image_metadata(source).parameters, params)
        path = None
        if request.save_images:
            path = save_output(ctx, output, mode="extras", seed=None, infotext=infotext)
        images.append(GeneratedImage(output, NO_SEED, infotext, path))
    if not images and ctx.job.interrupted:
        raise GenerationInterrupted("upscaling was interrupted before any image was finished")
    # 5. The result; info lists the infotexts like the generation modes do
    info = {"infotexts": [img.infotext for img in images], "upscaler_1": request.upscaler_1,
            "upscaler_2": request.upscaler_2, "image_names": list(request.image_names[:len(images)])}
    return GenerationResult(images=images, info=info, interrupted=ctx.job.interrupted)
