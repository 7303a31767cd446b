"""Generation routes: txt2img, img2img, extras, progress, interrupt, skip, png-info, and 501s for the modes to come.

txt2img, img2img and the extras are plain ``def`` routes, so FastAPI runs them in its thread pool; each waits
in the engine's device queue like any UI job, as the caller's job (webui/owners.py: its login, else its
address), named by ``force_task_id`` when the body sends one. A full queue answers 503 with ``Retry-After``.
progress, interrupt and skip are ``async`` and never block, so they answer at once while a job runs (and
even when every pool thread is waiting for the device); interrupt and skip reach only the caller's jobs,
or the one ``id_task`` names.
"""

from __future__ import annotations

import time
from datetime import datetime

from fastapi import APIRouter, Query, Request

from pipelines.context import AppContext
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.png_info import read_image_metadata
from pipelines.jobs.device_queue import QueueStatus
from pipelines.options import OptionsStore
from pipelines.progress import JobState
from webui.api.errors import naming_model_field, not_implemented
from webui.api.extras import batch_request, encoded_images, html_info, single_image_request
from webui.api.generation import apply_infotext, to_core_request, txt2img_response
from webui.api.images import decode_image, encode_png
from webui.api.img2img import img2img_response, to_img2img_request
from webui.api.models import (
    ErrorResponse,
    ExtrasBatchImagesRequest,
    ExtrasBatchImagesResponse,
    ExtrasSingleImageRequest,
    ExtrasSingleImageResponse,
    ImageToImageResponse,
    PNGInfoRequest,
    PNGInfoResponse,
    ProgressResponse,
    ProgressState,
    TextToImageResponse,
)
from webui.api.models import StableDiffusionImg2ImgProcessingAPI as Img2ImgBody
from webui.api.models import StableDiffusionTxt2ImgProcessingAPI as Txt2ImgBody
from webui.api.scripts import run_generation
from webui.owners import api_owner

TIMESTAMP = "%Y%m%d%H%M%S"
CLIENT_ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 422, 503)}
NOT_YET = (  # A1111 endpoints whose modes arrive in later milestones
    ("/interrogate", "interrogate"),
)


def progress_of(state: JobState | None, *, with_preview: bool, queue: QueueStatus | None = None,
                yours: bool = False) -> ProgressResponse:
    """A1111's progress: ``0.01 + job_no/job_count + sampling_step/sampling_steps/job_count``, plus the
    caller's place in the device queue."""
    waiting = {"queue_position": queue.position, "queue_size": queue.waiting} if queue is not None else {}
    if state is None or state.job_count == 0:
        return ProgressResponse(progress=0.0, eta_relative=0.0, state=ProgressState(), textinfo=None, **waiting)
    progress = 0.01 + state.job_no / state.job_count
    if state.sampling_steps:
        progress += state.sampling_step / state.sampling_steps / state.job_count
    progress = min(progress, 1.0)
    elapsed = time.monotonic() - state.started
    preview = state.current_preview
    return ProgressResponse(
        progress=progress,
        eta_relative=max(0.0, elapsed / progress - elapsed),
        state=ProgressState(
            interrupted=state.interrupted, job=state.job, job_count=state.job_count, job_no=state.job_no,
            job_timestamp=datetime.fromtimestamp(time.time() - elapsed).strftime(TIMESTAMP),
            sampling_step=state.sampling_step, sampling_steps=state.sampling_steps,
        ),
        current_image=encode_png(preview) if with_preview and yours and preview is not None else None,
        textinfo=state.textinfo or None,
        running_is_yours=yours,
        **waiting,
    )


def _model_field(body: Txt2ImgBody | Img2ImgBody) -> str | None:
    """The field that names the job's checkpoint, when the request names one."""
    named = (body.override_settings or {}).get("sd_model_checkpoint")
    return "override_settings.sd_model_checkpoint" if named else None


def add_generation_routes(router: APIRouter, ctx: AppContext, options: OptionsStore) -> None:
    engine = ctx.engine

    @router.post("/txt2img", response_model=TextToImageResponse, responses=CLIENT_ERRORS)
    def txt2img(body: Txt2ImgBody, caller: Request) -> TextToImageResponse:
        """Generate images from a prompt (A1111's ``StableDiffusionTxt2ImgProcessingAPI``)."""
        body = apply_infotext(body, ctx.store)
        request = to_core_request(body, options)
        job_timestamp = datetime.now().strftime(TIMESTAMP)
        with naming_model_field(_model_field(body)):  # script_name / alwayson_scripts (webui/api/scripts.py)
            result = run_generation(ctx, body, request, api_owner(caller))
        return txt2img_response(body, request, result, job_timestamp)

    @router.post("/img2img", response_model=ImageToImageResponse, responses=CLIENT_ERRORS)
    def img2img(body: Img2ImgBody, caller: Request) -> ImageToImageResponse:
        """Generate images from an init image and a prompt; with ``mask`` (white = repaint) it inpaints,
        honouring mask_blur (else mask_blur_x), inpainting_fill, inpaint_full_res(_padding) and
        inpainting_mask_invert (A1111's ``StableDiffusionImg2ImgProcessingAPI``)."""
        body = apply_infotext(body, ctx.store)
        request = to_img2img_request(body, options)
        job_timestamp = datetime.now().strftime(TIMESTAMP)
        with naming_model_field(_model_field(body)):
            result = run_generation(ctx, body, request, api_owner(caller))
        return img2img_response(body, request, result, job_timestamp)

    @router.post("/extra-single-image", response_model=ExtrasSingleImageResponse, responses=CLIENT_ERRORS)
    def extra_single_image(body: ExtrasSingleImageRequest, caller: Request) -> ExtrasSingleImageResponse:
        """Upscale one image with one or two upscalers (A1111's ``ExtrasSingleImageRequest``)."""
        result = engine.generate(single_image_request(body), owner=api_owner(caller))
        images = encoded_images(result)
        return ExtrasSingleImageResponse(html_info=html_info(result), image=images[0] if images else None)

    @router.post("/extra-batch-images", response_model=ExtrasBatchImagesResponse, responses=CLIENT_ERRORS)
    def extra_batch_images(body: ExtrasBatchImagesRequest, caller: Request) -> ExtrasBatchImagesResponse:
        """Upscale every image of ``imageList`` (A1111's ``ExtrasBatchImagesRequest``)."""
        result = engine.generate(batch_request(body), owner=api_owner(caller))
        return ExtrasBatchImagesResponse(html_info=html_info(result), images=encoded_images(result))

    @router.get("/progress", response_model=ProgressResponse)
    async def progress(caller: Request, skip_current_image: bool = False,
                       id_task: str | None = Query(None, description="a job's force_task_id: its place in "
                                                   "the queue rather than the caller's")) -> ProgressResponse:
        """The running job's progress (idle: progress 0, eta 0, job_count 0), and where the caller's waiting
        job stands in the device queue (``queue_position``). The live preview goes only to the running
        job's owner."""
        values = options.values()
        with_preview = (not skip_current_image and bool(values.get("live_previews_enable"))
                        and int(values.get("show_progress_every_n_steps") or 0) > 0)
        owner = None if id_task else api_owner(caller)
        return progress_of(engine.state_for(owner, id_task), with_preview=with_preview,
                           queue=engine.queue.status(owner, id_task),
                           yours=engine.owns_running(owner, id_task))

    @router.post("/interrupt", response_model=dict)
    async def interrupt(caller: Request, id_task: str | None = Query(None, description="stop only the job "
                                                                     "sent with this force_task_id")) -> dict:
        """Stop the caller's running job after its current step (the images made so far are returned to it)
        and drop its jobs still waiting in the queue; another caller's jobs are not touched."""
        engine.interrupt(owner=None if id_task else api_owner(caller), task_id=id_task)
        return {}

    @router.post("/skip", response_model=None)
    async def skip(caller: Request, id_task: str | None = Query(None, description="skip in the job sent with "
                                                                "this force_task_id")) -> None:
        """Cut the caller's current image short; the rest of the batch goes on."""
        engine.skip(owner=None if id_task else api_owner(caller), task_id=id_task)

    @router.post("/png-info", response_model=PNGInfoResponse, responses=CLIENT_ERRORS)
    def png_info(body: PNGInfoRequest) -> PNGInfoResponse:
        """The infotext of an image (PNG ``parameters``, EXIF UserComment, NovelAI, Fooocus), raw and parsed."""
        if not body.image.strip():
            return PNGInfoResponse(info="")
        metadata = read_image_metadata(decode_image(body.image, "image"))
        items: dict[str, str] = dict(metadata.items)
        if metadata.source == "EXIF UserComment":
            items["exif comment"] = metadata.parameters or ""  # A1111 lists it among the items too
        infotext = metadata.parameters or ""
        return PNGInfoResponse(info=infotext, items=items, parameters=parse_infotext(infotext) if infotext else {})

    for path, feature in NOT_YET:
        router.add_api_route(path, _not_yet(feature), methods=["POST"], response_model=None,
                             responses={501: {"model": ErrorResponse}},
                             summary=f"{feature}: not available yet (501)")


def _not_yet(feature: str):
    async def endpoint() -> None:
        raise not_implemented(feature)

    endpoint.__name__ = "not_yet_" + "".join(ch if ch.isalnum() else "_" for ch in feature)
    return endpoint
