"""The txt2img tab: a form that builds a Txt2ImgRequest, a gallery that shows the saved files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.paste import paste_parameters, to_txt2img_request
from pipelines.requests import HiresFix, Refiner, Txt2ImgRequest
from webui.components import extra_networks, fast_preset, scripts_panel, seed_extras, unconditional_form
from webui.components.checkpoint_bar import CheckpointBar
from webui.components.forms import NamedForm, prompt_row
from webui.components.gallery import ResultPanel, result_panel
from webui.components.quick_settings import QUICK_NAMES, QuickSettings
from webui.components.seed_extras import variation_fields
from webui.components.style_panel import StylePanel, styles_from_prompt
from webui.components.token_counter import TokenizerCache
from webui.errors import user_error
from webui.jobs import generation, run_streaming
from webui.owners import page_owner
from webui.queueing import device_events, interrupt_own, skip_own
from webui.tabs import txt2img_hires, txt2img_refiner
from webui.tabs.txt2img_hires import (
    HIRES_INPUT_NAMES,
    HiresInputs,
    hires_from_values,
    hires_values,
    upscaler_choices,
)
from webui.tabs.txt2img_refiner import REFINER_INPUT_NAMES, RefinerInputs, refiner_from_values, refiner_values


@dataclass(frozen=True)
class Txt2ImgForm(NamedForm):
    """The tab's inputs, named like :class:`Txt2ImgRequest` fields; the checkpoint is the bar's."""

    checkpoint: gr.Dropdown
    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    sampler_name: gr.Dropdown
    scheduler: gr.Dropdown
    steps: gr.Slider
    cfg_scale: gr.Slider
    width: gr.Slider
    height: gr.Slider
    seed: gr.Number
    seed_extra: gr.Checkbox  # A1111's "Extra" beside Seed, and the variation fields it shows (seed_extras.py)
    subseed: gr.Number
    subseed_strength: gr.Slider
    seed_resize_from_w: gr.Slider
    seed_resize_from_h: gr.Slider
    batch_size: gr.Slider
    n_iter: gr.Slider
    styles: gr.Dropdown  # the prompt row's Styles selection
    refiner: RefinerInputs  # the "Refiner" accordion (txt2img_refiner.py): enable_refiner, refiner_*
    hires: HiresInputs  # the "Hires. fix" accordion (txt2img_hires.py): enable_hr and the hr_* inputs

    def show(self, request: Txt2ImgRequest, *, hires_kept: HiresFix | None = None,
             refiner_kept: Refiner | None = None) -> dict[Component, Any]:
        """A value for every component, taken from ``request``; with hires fix (the refiner) off, its accordion
        shows ``hires_kept`` (``refiner_kept``), the values it had, unticked."""
        named = self.named()
        values = {name: getattr(request, name) for name in named
                  if name not in ("checkpoint", "seed_extra") and name not in HIRES_INPUT_NAMES
                  and name not in REFINER_INPUT_NAMES}
        values.update(hires_values(request.hires or hires_kept or HiresFix(), request.hires is not None))
        values.update(refiner_values(request.refiner, refiner_kept))
        values["styles"] = list(request.styles)
        values.update(seed_extras.extra_values(request))
        return {self.checkpoint: request.model, **{named[k]: v for k, v in values.items()}}


# The form's input names in the order of form.components() (the outputs of Read parameters).
INPUT_NAMES = (*(f.name for f in fields(Txt2ImgForm) if f.name not in ("hires", "refiner")), *REFINER_INPUT_NAMES,
               *HIRES_INPUT_NAMES)
# The outputs of a paste (Read parameters, PNG Info's Send to txt2img): the form, then the quick settings.
PASTE_NAMES = (*INPUT_NAMES, *QUICK_NAMES)


def request_from_form(*, checkpoint: str | None, prompt: str | None, negative_prompt: str | None,
                      sampler_name: str, scheduler: str, steps: float, cfg_scale: float, width: float, height: float,
                      seed: float | None, batch_size: float, n_iter: float, styles: list[str] | None = None,
                      seed_extra: bool = False, subseed: float | None = -1, subseed_strength: float = 0,
                      seed_resize_from_w: float = 0, seed_resize_from_h: float = 0,
                      enable_hr: bool = False, enable_refiner: bool = False, refiner_checkpoint: str | None = None,
                      refiner_switch_at: float = 0.8, **hires: Any) -> Txt2ImgRequest:
    """The request the form's current values describe (not validated yet); ``hires`` are the accordion's
    values (:func:`~webui.tabs.txt2img_hires.hires_from_values`), used when ``enable_hr``; the refiner's
    when ``enable_refiner``."""
    return Txt2ImgRequest(
        prompt=prompt or "", negative_prompt=negative_prompt or "", sampler_name=sampler_name, scheduler=scheduler,
        steps=int(steps), cfg_scale=float(cfg_scale), width=int(width), height=int(height),
        seed=int(seed if seed is not None else -1), batch_size=int(batch_size), n_iter=int(n_iter),
        **variation_fields(seed_extra=seed_extra, subseed=subseed, subseed_strength=subseed_strength,
                           seed_resize_from_w=seed_resize_from_w, seed_resize_from_h=seed_resize_from_h),
        model=checkpoint or None, hires=hires_from_values(**hires) if enable_hr else None, styles=tuple(styles or ()),
        refiner=refiner_from_values(enable_refiner=enable_refiner, refiner_checkpoint=refiner_checkpoint,
                                    refiner_switch_at=refiner_switch_at),
    )


def paste_handler(ctx: AppContext, form: Txt2ImgForm, quick: QuickSettings) -> Callable[..., dict[Component, Any]]:
    """An event function: an infotext onto the form and the quick settings (A1111's paste); its outputs are
    ``[*form.components(), *quick.components()]`` (:data:`PASTE_NAMES`). Unnamed fields keep their values;
    Clip skip and Emphasis become the image's (A1111's defaults when it names none) and are saved; the
    styles its prompts carry are selected (none when none fit), so the image can be made again."""

    def paste(infotext: str | None, **form_values: Any) -> dict[Component, Any]:
        current = request_from_form(**form_values)
        accordion = hires_from_values(**{k: v for k, v in form_values.items()
                                         if k in HIRES_INPUT_NAMES and k != "enable_hr"})
        refiner_kept = refiner_from_values(**{**{k: form_values[k] for k in REFINER_INPUT_NAMES if k in form_values},
                                              "enable_refiner": True})
        pasted = paste_parameters(parse_infotext(infotext or ""), ctx.store)
        if not pasted.has_parameters:
            gr.Warning("No generation parameters found: paste a whole infotext (prompt, then a line such as "
                       "'Steps: 20, Sampler: Euler a, ...').", title="Nothing to read")
            return form.show(current, hires_kept=accordion, refiner_kept=refiner_kept)
        for match in (pasted.model_status, *pasted.loras):
            if match.missing:
                gr.Warning(match.message, title="Model not installed")
        notes = [m.message for m in pasted.loras if m.found] + list(pasted.notes)
        request = to_txt2img_request(pasted, current)
        if "prompt" in pasted.fields:
            request = styles_from_prompt(ctx.styles, request)
        if request.hires is not None and request.hires.hr_upscaler not in upscaler_choices(ctx):
            notes.append(f"Hires upscaler {request.hires.hr_upscaler!r} is not installed; kept "
                         f"{accordion.hr_upscaler!r}.")
            request = replace(request, hires=replace(request.hires, hr_upscaler=accordion.hr_upscaler))
        request = replace(request, refiner=txt2img_refiner.checked_paste(ctx, request.refiner, notes))
        values = form.show(request, hires_kept=accordion, refiner_kept=refiner_kept)
        kept = form.show(current, hires_kept=accordion, refiner_kept=refiner_kept)
        for component, value in values.items():  # a valid request value can lie beyond a slider's range
            if isinstance(component, gr.Slider) and not component.minimum <= value <= component.maximum:
                notes.append(f"{component.label} {value:g} is outside this form's range; kept {kept[component]:g}.")
                values[component] = kept[component]
        if notes:
            gr.Info("\n".join(notes), title="Parameters read")
        return {**values, **quick.paste(request)}

    return paste


@dataclass(frozen=True)
class Txt2ImgTab:
    """What the page wires across tabs: the form, and the gallery and info box the result actions act on."""

    form: Txt2ImgForm
    gallery: gr.Gallery
    info: gr.Textbox
    styles: StylePanel  # wired with the other tabs' (style_panel.wire)


def build(ctx: AppContext, bar: CheckpointBar, quick: QuickSettings, tokenizers: TokenizerCache) -> Txt2ImgTab:
    defaults = Txt2ImgRequest()
    last_seed = gr.State(-1)
    row = prompt_row("txt2img", "a watercolor fox in a misty forest", list(ctx.styles.all()))
    prompt, negative_prompt, generate, interrupt, skip = row.prompt, row.negative_prompt, row.generate, \
        row.interrupt, row.skip
    with row.side:
        read_parameters = gr.Button("↙ Read parameters", size="sm", elem_id="txt2img_read_parameters")
    extra_networks.build(ctx, "txt2img", prompt, negative_prompt, bar, quick)
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Row():
                sampler_name = gr.Dropdown(samplers.sampler_names(), value=defaults.sampler_name,
                                           label="Sampling method")
                scheduler = gr.Dropdown(samplers.schedule_labels(), value=defaults.scheduler, label="Schedule type")
            steps = gr.Slider(1, 150, value=defaults.steps, step=1, label="Sampling steps")
            with gr.Row():
                width = gr.Slider(64, 2048, value=defaults.width, step=8, label="Width")
                height = gr.Slider(64, 2048, value=defaults.height, step=8, label="Height")
            with gr.Row():
                n_iter = gr.Slider(1, 100, value=1, step=1, label="Batch count")
                batch_size = gr.Slider(1, 8, value=1, step=1, label="Batch size")
            cfg_scale = gr.Slider(0, 30, value=defaults.cfg_scale, step=0.5, label="CFG Scale")
            fast_preset.build(ctx, "txt2img", bar.dropdown, prompt, sampler_name, scheduler, steps, cfg_scale)
            with gr.Row(equal_height=True):
                seed = gr.Number(value=-1, label="Seed", precision=0, scale=4, elem_id="txt2img_seed")
                random_seed = gr.Button("🎲 Random", scale=1, min_width=60, elem_id="txt2img_random_seed")
                reuse_seed = gr.Button("♻️ Reuse last", scale=1, min_width=60, elem_id="txt2img_reuse_seed")
                seed_extra = seed_extras.checkbox("txt2img")
            extras = seed_extras.build("txt2img", seed_extra)
            hires = txt2img_hires.build(ctx, width, height)
            refiner = txt2img_refiner.build(ctx)
            scripts = scripts_panel.build(ctx, "txt2img")  # extension sections, Scripts dropdown
        with gr.Column(scale=1):
            results = result_panel("txt2img")
    preview, gallery, info = results.preview, results.gallery, results.info
    extras.wire_reuse(info)
    form = Txt2ImgForm(bar.dropdown, prompt, negative_prompt, sampler_name, scheduler, steps, cfg_scale, width,
                       height, seed, *extras.components(), batch_size, n_iter, row.styles.selector.styles, refiner,
                       hires)

    def txt2img(progress: gr.Progress = gr.Progress(), request: gr.Request | None = None, **form_values: Any):
        """Generate images from a prompt; yields live previews, then the saved images."""
        run = scripts.take(form_values)  # the script and extension values leave form_values
        job = request_from_form(**form_values)
        try:
            job.validate()
        except Exception as exc:
            raise user_error(exc) from exc
        result = yield from run_streaming(generation(ctx, job, run, owner=page_owner(request)), progress,
                                          error_title="Cannot generate", on_update=ResultPanel.preview_update)
        yield ResultPanel.final_update(result)

    def txt2img_once(progress: gr.Progress = gr.Progress(), request: gr.Request | None = None, **form_values: Any):
        """Generate images from a prompt and return them when done (for API clients: no previews sent)."""
        *_, final = txt2img(progress=progress, request=request, **form_values)
        return final[1:]

    paste = paste_handler(ctx, form, quick)

    def read_txt2img_parameters(**form_values: Any) -> dict[Component, Any]:
        """Fill the form from generation parameters pasted into the prompt box (A1111's ↙ button)."""
        return paste(form_values["prompt"], **form_values)

    # The page streams previews; API clients (gradio_client) get one answer at the end, so they
    # don't download every preview. Same inputs, same concurrency group.
    generate.click(txt2img, None, [preview, gallery, info, last_seed],
                   inputs_kwargs={**form.named(), **scripts.named()},
                   api_name="txt2img_live", **device_events(ctx))
    api_generate = gr.Button(visible=False, elem_id="txt2img_api")
    api_generate.click(txt2img_once, None, [gallery, info, last_seed],
                       inputs_kwargs={**form.named(), **scripts.named()},
                       api_name="txt2img", **device_events(ctx))
    read_parameters.click(read_txt2img_parameters, None, [*form.components(), *quick.components()],
                          inputs_kwargs=form.named(), api_name="txt2img_read_parameters")
    row.wire_counters(tokenizers, steps=steps, emphasis=quick.emphasis, checkpoint=bar.dropdown)
    unconditional_form.wire(ctx, bar.dropdown, prompt, negative_prompt, sampler_name, steps, bar.status)  # DDPM
    prompt.submit(lambda: None, None, None, js="() => document.querySelector('#txt2img_generate').click()")
    interrupt.click(interrupt_own(ctx), None, None, api_name="interrupt", queue=False)
    skip.click(skip_own(ctx), None, None, api_name="skip", queue=False)
    random_seed.click(lambda: -1, None, seed, queue=False, api_name=False)
    reuse_seed.click(lambda last: last, last_seed, seed, queue=False, api_name=False)
    return Txt2ImgTab(form, gallery, info, row.styles)
