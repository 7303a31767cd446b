"""The Upscale tab (A1111's "Extras"): one image or a batch, scaled by a factor or to a size.

The form builds an :class:`~pipelines.requests.ExtrasRequest`; the engine runs it with
per-tile progress and saves the results under ``outputs/extras-images``. Upscaler models
live in ``models/ESRGAN``; the "Download from Hub" row fetches one into it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from pipelines.context import AppContext
from pipelines.errors import ValidationError
from pipelines.imaging.image_input import read_image_file
from pipelines.requests import ExtrasRequest
from webui.components.forms import NamedForm
from webui.components.gallery import first_infotext, gallery_items, output_gallery, size_caption
from webui.errors import user_error
from webui.jobs import run_job
from webui.owners import page_owner
from webui.queueing import device_events, interrupt_own

SOURCES = ("Single image", "Batch")
RESIZE_CHOICES = [("Scale by", 0), ("Scale to", 1)]
DEFAULT_SCALE = 4  # A1111's Extras default ("Resize": 4)


@dataclass(frozen=True)
class ExtrasForm(NamedForm):
    """The tab's inputs, named like the upscale function's keyword arguments."""

    source: gr.Radio  # which sub-tab is showing: "Single image" or "Batch"
    image: gr.Image
    batch_files: gr.File
    resize_mode: gr.Radio
    upscaling_resize: gr.Slider
    upscaling_resize_w: gr.Number
    upscaling_resize_h: gr.Number
    upscaling_crop: gr.Checkbox
    upscaler_1: gr.Dropdown
    upscaler_2: gr.Dropdown
    extras_upscaler_2_visibility: gr.Slider


@dataclass(frozen=True)
class ExtrasTab:
    """What other tabs' actions need: the form, the sub-tabs, the output and the run function."""

    form: ExtrasForm
    source_tabs: gr.Tabs  # ids "single" and "batch"
    upscale: gr.Button
    gallery: gr.Gallery
    info: gr.Textbox
    run: Callable[..., Any]  # the Upscale button's generator function, keyword arguments as ExtrasForm
    refresh_upscalers: Callable[[], tuple[gr.Dropdown, gr.Dropdown]]  # for the page's load event


def _open_images(paths: list[str] | None) -> tuple[Image.Image, ...]:
    """The batch's files as images, each fully read; a file that is not an image names itself."""
    images = []
    for path in paths or []:
        name = path.rsplit("/", 1)[-1]
        try:
            images.append(read_image_file(path, name))  # read fully now; the PNG text chunks are kept
        except ValidationError as exc:
            raise gr.Error(str(exc), title="Cannot upscale") from exc
    return tuple(images)


def request_from_form(*, source: str, image: Image.Image | str | None, batch_files: list[str] | None, resize_mode: int,
                      upscaling_resize: float, upscaling_resize_w: float | None, upscaling_resize_h: float | None,
                      upscaling_crop: bool, upscaler_1: str | None, upscaler_2: str | None,
                      extras_upscaler_2_visibility: float) -> ExtrasRequest:
    """The request the form describes (not validated yet)."""
    if source == "Batch":
        images = _open_images(batch_files)
        if not images:
            raise gr.Error("Add one or more image files to the Batch tab first", title="Cannot upscale")
    else:
        if image is None:
            raise gr.Error("Drop or paste an image into the Single image tab first", title="Cannot upscale")
        try:
            images = (read_image_file(image, "image") if isinstance(image, str) else image,)
        except ValidationError as exc:
            raise gr.Error(str(exc), title="Cannot upscale") from exc
    return ExtrasRequest(
        images=images, resize_mode=int(resize_mode), upscaling_resize=float(upscaling_resize),
        upscaling_resize_w=int(upscaling_resize_w or 0), upscaling_resize_h=int(upscaling_resize_h or 0),
        upscaling_crop=bool(upscaling_crop), upscaler_1=upscaler_1 or "None", upscaler_2=upscaler_2 or "None",
        extras_upscaler_2_visibility=float(extras_upscaler_2_visibility),
    )


def _upscaler_dropdowns(ctx: AppContext, first: str | None = None, *,
                        rescan: bool = False) -> tuple[gr.Dropdown, gr.Dropdown]:
    """Both dropdowns with the current upscaler names (``rescan``: read the model folders again)."""
    names = [r.name for r in ctx.upscalers.refresh()] if rescan else ctx.upscalers.names()
    return gr.Dropdown(choices=names, value=first or ctx.upscalers.default_name()), gr.Dropdown(choices=names)


def _build_form(ctx: AppContext) -> tuple[ExtrasForm, gr.Tabs, gr.Button]:
    upscalers = ctx.upscalers
    names = list(upscalers.names())
    source = gr.Radio(list(SOURCES), value=SOURCES[0], visible=False, elem_id="extras_source")
    with gr.Tabs(selected="single", elem_id="extras_source_tabs") as source_tabs:
        with gr.Tab("Single image", id="single") as single_tab:
            # a file path: request_from_form reads it fully (a truncated upload is refused, not upscaled)
            image = gr.Image(label="Source", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                             elem_id="extras_image")
        with gr.Tab("Batch", id="batch") as batch_tab:
            batch_files = gr.File(label="Images", file_count="multiple", file_types=["image"],
                                  elem_id="extras_batch_files")
    single_tab.select(lambda: SOURCES[0], None, source, api_name=False, queue=False)
    batch_tab.select(lambda: SOURCES[1], None, source, api_name=False, queue=False)
    resize_mode = gr.Radio(RESIZE_CHOICES, value=0, label="Resize", elem_id="extras_resize_mode")
    with gr.Row(visible=True) as scale_by_row:
        upscaling_resize = gr.Slider(1, 8, value=DEFAULT_SCALE, step=0.05, label="Scale by",
                                     elem_id="extras_upscaling_resize")
    with gr.Row(visible=False) as scale_to_row:
        upscaling_resize_w = gr.Number(512, label="Width", precision=0, minimum=1, elem_id="extras_resize_w")
        upscaling_resize_h = gr.Number(512, label="Height", precision=0, minimum=1, elem_id="extras_resize_h")
        upscaling_crop = gr.Checkbox(True, label="Crop to fit", elem_id="extras_crop")
    resize_mode.change(lambda mode: (gr.Row(visible=mode == 0), gr.Row(visible=mode == 1)), resize_mode,
                       [scale_by_row, scale_to_row], api_name=False, queue=False)
    with gr.Row(equal_height=True):
        # Custom values allowed: a model added later (🔄, Download) is not in the choices the page was built
        # with; the core checks every name and says which ones exist.
        upscaler_1 = gr.Dropdown(names, value=upscalers.default_name(), label="Upscaler 1", scale=4,
                                 allow_custom_value=True, elem_id="extras_upscaler_1")
        upscaler_2 = gr.Dropdown(names, value="None", label="Upscaler 2", scale=4, allow_custom_value=True,
                                 elem_id="extras_upscaler_2")
        refresh = gr.Button("🔄", scale=1, min_width=40, elem_id="extras_refresh_upscalers")
    visibility = gr.Slider(0, 1, value=0, step=0.001, label="Upscaler 2 visibility",
                           elem_id="extras_upscaler_2_visibility")
    def refresh_upscalers() -> tuple[gr.Dropdown, gr.Dropdown]:
        """Rescan the upscaler folders (models/ESRGAN, ...) and list what is there."""
        return _upscaler_dropdowns(ctx, rescan=True)

    refresh.click(refresh_upscalers, None, [upscaler_1, upscaler_2], api_name="refresh_upscalers", queue=False)
    form = ExtrasForm(source, image, batch_files, resize_mode, upscaling_resize, upscaling_resize_w,
                      upscaling_resize_h, upscaling_crop, upscaler_1, upscaler_2, visibility)
    return form, source_tabs, refresh


def _download_row(ctx: AppContext, form: ExtrasForm) -> None:
    with gr.Accordion("Download an upscaler from the Hub", open=False, elem_id="extras_download"):
        with gr.Row(equal_height=True):
            repo_id = gr.Textbox(label="Repo id", placeholder="org/name", scale=3, elem_id="extras_download_repo")
            filename = gr.Textbox(label="File", placeholder="RealESRGAN_x4plus.safetensors", scale=3,
                                  elem_id="extras_download_file")
            download = gr.Button("Download", scale=1, elem_id="extras_download_button")
        result = gr.Markdown(elem_id="extras_download_result")

    def download_upscaler(repo_id: str, filename: str, progress: gr.Progress = gr.Progress()):
        """Fetch an upscaler model from the Hub into models/ESRGAN, reporting bytes."""
        repo_id, filename = (repo_id or "").strip(), (filename or "").strip()
        if repo_id.count("/") != 1 or not filename:
            raise gr.Error("Give a Hub repo id such as org/name and the file to fetch from it",
                           title="Cannot download")
        record = run_job(lambda report: ctx.upscalers.download(repo_id, filename, on_progress=report), progress,
                         error_title="Cannot download")
        first, second = _upscaler_dropdowns(ctx, first=record.name)
        return f"Downloaded **{record.name}**", first, second

    download.click(download_upscaler, [repo_id, filename], [result, form.upscaler_1, form.upscaler_2],
                   api_name="download_upscaler")


def build(ctx: AppContext) -> ExtrasTab:
    with gr.Row():
        with gr.Column(scale=1):
            form, source_tabs, _ = _build_form(ctx)
            _download_row(ctx, form)
        with gr.Column(scale=1):
            with gr.Row():
                upscale = gr.Button("Upscale", variant="primary", elem_id="extras_upscale")
                interrupt = gr.Button("Interrupt", elem_id="extras_interrupt")
            gallery = output_gallery("extras_gallery")
            info = gr.Textbox(label="Info", lines=3, interactive=False, elem_id="extras_info")

    def extras(progress: gr.Progress = gr.Progress(), request: gr.Request | None = None, **form_values: Any):
        """Upscale the image (or the batch) and save the results under outputs/extras-images."""
        job = request_from_form(**form_values)
        try:
            job.validate(ctx.upscalers)
        except Exception as exc:
            raise user_error(exc, title="Cannot upscale") from exc
        owner = page_owner(request)
        result = run_job(lambda report: ctx.engine.generate(job, on_progress=report, owner=owner), progress,
                         error_title="Cannot upscale")
        return gallery_items(result, size_caption), first_infotext(result)

    upscale.click(extras, None, [gallery, info], inputs_kwargs=form.named(), api_name="extras",
                  **device_events(ctx))
    interrupt.click(interrupt_own(ctx), None, None, api_name=False, queue=False)
    return ExtrasTab(form, source_tabs, upscale, gallery, info, extras, lambda: _upscaler_dropdowns(ctx))
