"""The img2img tab: sub-tabs for the starting image (img2img, Inpaint, Outpaint) over one shared form.

Which sub-tab is open decides the request: the sub-tabs' select events write it into a
``gr.State`` (``mode``), and :meth:`Img2ImgTab.fill` sets it too when another tab sends an
image here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.errors import ValidationError
from pipelines.requests import GenerationRequest, Img2ImgRequest
from webui.components import extra_networks, fast_preset, scripts_panel
from webui.components.checkpoint_bar import CheckpointBar
from webui.components.forms import prompt_row
from webui.components.gallery import ResultPanel, result_panel
from webui.components.quick_settings import QuickSettings
from webui.components.style_panel import StylePanel
from webui.components.token_counter import TokenizerCache
from webui.errors import user_error
from webui.jobs import generation, run_streaming
from webui.owners import page_owner
from webui.queueing import device_events, interrupt_own, skip_own
from webui.tabs import img2img_variation
from webui.tabs import inpaint as inpaint_tab
from webui.tabs import outpaint as outpaint_tab
from webui.tabs.img2img_form import RESIZE_CHOICES, Img2ImgForm, read_upload, request_from_form, size_of
from webui.tabs.inpaint import InpaintInputs, inpaint_request
from webui.tabs.outpaint import OutpaintInputs, outpaint_request

SUB_TABS = ("img2img", "inpaint", "outpaint")  # the sub-tab ids, which are also the values of Img2ImgTab.mode
FORM_FIELDS = tuple(f.name for f in fields(Img2ImgForm))
INPAINT_FIELDS = tuple(f.name for f in fields(InpaintInputs))
OUTPAINT_FIELDS = tuple(f.name for f in fields(OutpaintInputs))


@dataclass(frozen=True)
class Img2ImgTab:
    """What the img2img tab offers the rest of the page (send-to actions, Vary, paste).

    - ``form``: the shared inputs, named like :class:`Img2ImgRequest` fields.
    - ``sub_tabs`` / ``mode``: the sub-tab switcher (ids :data:`SUB_TABS`) and the state naming the open one.
    - ``init_image``: the img2img sub-tab's image; ``inpaint``: the Inpaint sub-tab's editor and settings;
      ``outpaint``: the Outpaint sub-tab's image and expansion.
    - ``gallery`` / ``info``: the results and the first result's infotext.
    - ``styles``: the prompt row's styles selection and editor (wired with the other tabs').
    - ``variation``: the Variation sub-tab's own inputs (model, unCLIP noise level).
    """

    form: Img2ImgForm
    sub_tabs: gr.Tabs
    mode: gr.State
    init_image: gr.Image
    inpaint: InpaintInputs
    outpaint: OutpaintInputs
    gallery: gr.Gallery
    info: gr.Textbox
    styles: StylePanel
    variation: img2img_variation.VariationInputs | None = None

    def inputs_by_sub_tab(self) -> dict[str, dict[str, Component]]:
        """Sub-tab id -> the inputs its request is built from, by keyword."""
        return {"img2img": {**self.form.named(), "init_image": self.init_image},
                "inpaint": {**self.form.named(), **self.inpaint.named()},
                "outpaint": {**self.form.named(), **self.outpaint.named()}}

    def inputs(self) -> dict[str, Component]:
        """Every input of the page's Generate event, by keyword (``mode`` picks the sub-tab's)."""
        merged: dict[str, Component] = {"mode": self.mode}
        for inputs in self.inputs_by_sub_tab().values():
            merged.update(inputs)
        return merged

    def fill_targets(self) -> list[Component | gr.Tabs]:
        """The components :meth:`fill` may set: list them as the outputs of the event that calls it."""
        return [*self.form.components(), self.sub_tabs, self.mode, self.init_image,
                *self.inpaint.named().values(), *self.outpaint.named().values(),
                *([self.variation.model, self.variation.noise_level] if self.variation else [])]

    def fill(self, request: Img2ImgRequest, sub_tab: str = "img2img") -> dict[Component | gr.Tabs, Any]:
        """Values that show ``request`` (its image and settings) in the form and open ``sub_tab``.

        "img2img" puts the image into the img2img sub-tab, "inpaint" into the Inpaint editor (with
        the request's inpaint settings; the user then paints the mask), "outpaint" into the Outpaint
        sub-tab (with the expansion of an :class:`OutpaintRequest`). The image may be a PIL image or
        a file path. The page's own switch to the img2img tab is the caller's: add
        ``tabs: gr.Tabs(selected="img2img")``.
        """
        if sub_tab not in SUB_TABS:
            raise ValueError(f"sub_tab must be one of {SUB_TABS}, got {sub_tab!r}")
        values = {**self.form.show(request), self.sub_tabs: gr.Tabs(selected=sub_tab), self.mode: sub_tab}
        if sub_tab == "inpaint":
            return {**values, **self.inpaint.show(request)}
        if sub_tab == "outpaint":
            return {**values, **self.outpaint.show(request)}
        return {**values, self.init_image: request.init_image}


def build_request(*, mode: str, **values: Any) -> GenerationRequest:
    """The request for sub-tab ``mode`` from the values of its inputs; raises ``gr.Error`` for bad input."""
    base = request_from_form(init_image=None, **{name: values[name] for name in FORM_FIELDS})
    if mode == "img2img":
        if values.get("init_image") is None:
            raise gr.Error("Upload or paste an image to start from (drop a file on the image box, or Ctrl+V).",
                           title="No image")
        try:
            request = replace(base, init_image=read_upload(values["init_image"], "init_image"))
        except ValidationError as exc:
            raise user_error(exc) from exc
    elif mode == "inpaint":
        request = inpaint_request(base, **{name: values[name] for name in INPAINT_FIELDS})
    elif mode == "outpaint":
        request = outpaint_request(base, **{name: values[name] for name in OUTPAINT_FIELDS})
    else:
        raise gr.Error(f"Unknown img2img sub-tab {mode!r}.", title="Cannot generate")
    try:
        request.validate()
    except Exception as exc:
        raise user_error(exc) from exc
    return request


def generate_handler(ctx: AppContext, scripts: scripts_panel.ScriptsPanel) -> Callable[..., Any]:
    """The page's Generate: yields live previews, then the saved images, the info and the seed (``scripts``:
    the extension sections and the Scripts dropdown)."""

    def img2img(progress: gr.Progress = gr.Progress(), request: gr.Request | None = None, **values: Any):
        """Generate from the open sub-tab's image; yields live previews, then the saved images."""
        run = scripts.take(values)
        job = build_request(**values)
        result = yield from run_streaming(generation(ctx, job, run, owner=page_owner(request)), progress,
                                          error_title="Cannot generate", on_update=ResultPanel.preview_update)
        yield ResultPanel.final_update(result)

    return img2img


def api_handler(live: Callable[..., Any], mode: str) -> Callable[..., Any]:
    """One sub-tab's Generate for API clients: the results when done, no previews sent."""

    def generate_once(progress: gr.Progress = gr.Progress(), request: gr.Request | None = None, **values: Any):
        *_, final = live(progress=progress, request=request, mode=mode, **values)
        return final[1:]

    generate_once.__doc__ = f"Generate in the {mode} sub-tab's mode and return the saved images and their info."
    return generate_once


def _settings(bar: CheckpointBar, prompt: gr.Textbox, negative_prompt: gr.Textbox,
              styles: gr.Dropdown) -> tuple[Img2ImgForm, gr.Button]:
    """The shared settings under the sub-tabs; returns the form and the ♻️ button."""
    defaults = Img2ImgRequest()
    with gr.Row():
        sampler_name = gr.Dropdown(samplers.sampler_names(), value=defaults.sampler_name, label="Sampling method")
        scheduler = gr.Dropdown(samplers.schedule_labels(), value=defaults.scheduler, label="Schedule type")
    steps = gr.Slider(1, 150, value=defaults.steps, step=1, label="Sampling steps", elem_id="img2img_steps")
    resize_mode = gr.Radio(RESIZE_CHOICES, value=defaults.resize_mode, label="Resize mode",
                           elem_id="img2img_resize_mode")
    with gr.Row():
        width = gr.Slider(64, 2048, value=defaults.width, step=8, label="Width", elem_id="img2img_width")
        height = gr.Slider(64, 2048, value=defaults.height, step=8, label="Height", elem_id="img2img_height")
    with gr.Row():
        n_iter = gr.Slider(1, 100, value=1, step=1, label="Batch count")
        batch_size = gr.Slider(1, 8, value=1, step=1, label="Batch size")
    cfg_scale = gr.Slider(0, 30, value=defaults.cfg_scale, step=0.5, label="CFG Scale")
    denoising_strength = gr.Slider(0, 1, value=defaults.denoising_strength, step=0.01, label="Denoising strength",
                                   elem_id="img2img_denoising_strength")
    with gr.Row(equal_height=True):
        seed = gr.Number(value=-1, label="Seed", precision=0, scale=4, elem_id="img2img_seed")
        random_seed = gr.Button("🎲 Random", scale=1, min_width=60, elem_id="img2img_random_seed")
        reuse_seed = gr.Button("♻️ Reuse last", scale=1, min_width=60, elem_id="img2img_reuse_seed")
    random_seed.click(lambda: -1, None, seed, queue=False, api_name=False)
    form = Img2ImgForm(bar.dropdown, prompt, negative_prompt, sampler_name, scheduler, steps, resize_mode, width,
                       height, n_iter, batch_size, cfg_scale, denoising_strength, seed, styles)
    return form, reuse_seed


def build(ctx: AppContext, bar: CheckpointBar, quick: QuickSettings, tokenizers: TokenizerCache) -> Img2ImgTab:
    mode = gr.State("img2img")
    last_seed = gr.State(-1)
    row = prompt_row("img2img", "what the new image shows", list(ctx.styles.all()))
    prompt, negative_prompt, generate, interrupt, skip = row.prompt, row.negative_prompt, row.generate, \
        row.interrupt, row.skip
    extra_networks.build(ctx, "img2img", prompt, negative_prompt, bar, quick)
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tabs(elem_id="img2img_sub_tabs") as sub_tabs:
                with gr.Tab("img2img", id="img2img", elem_id="img2img_sub_img2img") as img2img_sub:
                    # a file path: the handler reads it fully (a truncated upload is refused, not repainted)
                    init_image = gr.Image(label="Image", type="filepath", sources=["upload", "clipboard"],
                                          image_mode=None, height=360, elem_id="img2img_image")
                with gr.Tab("Inpaint", id="inpaint", elem_id="img2img_sub_inpaint") as inpaint_sub:
                    inpaint = inpaint_tab.build_inputs()
                with gr.Tab("Outpaint", id="outpaint", elem_id="img2img_sub_outpaint") as outpaint_sub:
                    outpaint = outpaint_tab.build_inputs()
                with gr.Tab("Variation", id="variation", elem_id="img2img_sub_variation",
                            visible=bool(img2img_variation.model_names(ctx))):  # an image-variation model installed
                    variation = img2img_variation.build_inputs(ctx)
            form, reuse_seed = _settings(bar, prompt, negative_prompt, row.styles.selector.styles)
            fast_preset.build(ctx, "img2img", bar.dropdown, prompt, form.sampler_name, form.scheduler, form.steps,
                              form.cfg_scale)
            scripts = scripts_panel.build(ctx, "img2img")
        with gr.Column(scale=1):
            results = result_panel("img2img")
    preview, gallery, info = results.preview, results.gallery, results.info
    tab = Img2ImgTab(form, sub_tabs, mode, init_image, inpaint, outpaint, gallery, info, row.styles, variation)

    img2img_sub.select(lambda: "img2img", None, mode, queue=False, api_name=False)
    inpaint_sub.select(lambda: "inpaint", None, mode, queue=False, api_name=False)
    outpaint_sub.select(lambda: "outpaint", None, mode, queue=False, api_name=False)
    outpaint.outpaint_image.upload(size_of, outpaint.outpaint_image, [form.width, form.height], queue=False,
                                   api_name=False)
    init_image.upload(size_of, init_image, [form.width, form.height], queue=False, api_name=False)
    inpaint.inpaint_editor.upload(lambda value: size_of((value or {}).get("background")), inpaint.inpaint_editor,
                                  [form.width, form.height], queue=False, api_name=False)
    live = generate_handler(ctx, scripts)
    # The page streams previews from whichever sub-tab is open. API clients get one endpoint per
    # sub-tab, taking only that sub-tab's inputs, and one answer at the end. One device queue.
    generate.click(live, None, [preview, gallery, info, last_seed],
                   inputs_kwargs={**tab.inputs(), **scripts.named()},
                   api_name="img2img_live", **device_events(ctx))
    for sub_tab, inputs in tab.inputs_by_sub_tab().items():
        api_generate = gr.Button(visible=False, elem_id=f"{sub_tab}_api")
        api_generate.click(api_handler(live, sub_tab), None, [gallery, info, last_seed],
                           inputs_kwargs={**inputs, **scripts.named()},
                           api_name=sub_tab, **device_events(ctx))
    prompt.submit(lambda: None, None, None, js="() => document.querySelector('#img2img_generate').click()")
    interrupt.click(interrupt_own(ctx), None, None, api_name=False, queue=False)
    skip.click(skip_own(ctx), None, None, api_name=False, queue=False)
    reuse_seed.click(lambda last: last, last_seed, form.seed, queue=False, api_name=False)
    img2img_variation.wire(ctx, variation, form, gallery, info)
    row.wire_counters(tokenizers, steps=form.steps, emphasis=quick.emphasis, checkpoint=bar.dropdown)
    return tab
