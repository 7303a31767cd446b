"""The txt2img tab's "Hires. fix" accordion (A1111's layout): its inputs, and HiresFix <-> form values."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gradio as gr

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.imaging.latent_upscale import LATENT_UPSCALE_MODES
from pipelines.requests.hires import SAME_SAMPLER, SAME_SCHEDULER, HiresFix


@dataclass(frozen=True)
class HiresInputs:
    """The accordion's inputs, named like the API fields (and :class:`HiresFix`'s)."""

    enable_hr: gr.Checkbox
    hr_upscaler: gr.Dropdown
    hr_second_pass_steps: gr.Slider
    denoising_strength: gr.Slider
    hr_scale: gr.Slider
    hr_resize_x: gr.Slider
    hr_resize_y: gr.Slider
    hr_sampler_name: gr.Dropdown
    hr_scheduler: gr.Dropdown
    hr_prompt: gr.Textbox
    hr_negative_prompt: gr.Textbox


HIRES_INPUT_NAMES = tuple(f.name for f in fields(HiresInputs))


def upscaler_choices(ctx: AppContext) -> list[str]:
    """The latent modes, then the upscalers (None, Lanczos, Nearest, model files), as A1111's dropdown."""
    return [*LATENT_UPSCALE_MODES, *ctx.upscalers.names()]


def hires_from_values(*, hr_upscaler: str = "Latent", hr_second_pass_steps: float = 0, denoising_strength: float = 0.7,
                      hr_scale: float = 2.0, hr_resize_x: float = 0, hr_resize_y: float = 0,
                      hr_sampler_name: str | None = None, hr_scheduler: str | None = None, hr_prompt: str | None = "",
                      hr_negative_prompt: str | None = "") -> HiresFix:
    """The accordion's values as a HiresFix (whether or not it is enabled); defaults are HiresFix's."""
    return HiresFix(
        hr_scale=float(hr_scale), hr_upscaler=hr_upscaler or "Latent", hr_second_pass_steps=int(hr_second_pass_steps),
        hr_resize_x=int(hr_resize_x), hr_resize_y=int(hr_resize_y), denoising_strength=float(denoising_strength),
        hr_sampler_name=None if hr_sampler_name in (None, "", SAME_SAMPLER) else hr_sampler_name,
        hr_scheduler=None if hr_scheduler in (None, "", SAME_SCHEDULER) else hr_scheduler,
        hr_prompt=hr_prompt or "", hr_negative_prompt=hr_negative_prompt or "",
    )


def hires_values(hires: HiresFix, enabled: bool) -> dict[str, Any]:
    """Input name -> value showing ``hires`` (the inverse of :func:`hires_from_values`)."""
    return {
        "enable_hr": enabled, "hr_upscaler": hires.hr_upscaler, "hr_second_pass_steps": hires.hr_second_pass_steps,
        "denoising_strength": hires.denoising_strength, "hr_scale": hires.hr_scale,
        "hr_resize_x": hires.hr_resize_x, "hr_resize_y": hires.hr_resize_y,
        "hr_sampler_name": hires.hr_sampler_name or SAME_SAMPLER, "hr_scheduler": hires.hr_scheduler or SAME_SCHEDULER,
        "hr_prompt": hires.hr_prompt, "hr_negative_prompt": hires.hr_negative_prompt,
    }


def summary(width: float, height: float, enable_hr: bool, **values: Any) -> str:
    """A1111's "from 512x512 to 1024x1024" line under the checkbox."""
    if not enable_hr:
        return ""
    hires = hires_from_values(**values)
    try:
        target = hires.target_size(int(width), int(height))
    except (ZeroDivisionError, TypeError, ValueError):
        return ""
    return f"from {int(width)}x{int(height)} to **{target[0]}x{target[1]}**"


def build(ctx: AppContext, width: gr.Slider, height: gr.Slider) -> HiresInputs:
    """The accordion, closed, with hires fix off; the upscaler list is refreshed on page load."""
    defaults = HiresFix()
    with gr.Accordion("Hires. fix", open=False, elem_id="txt2img_hr"):
        with gr.Row():
            enable_hr = gr.Checkbox(False, label="Hires. fix", elem_id="txt2img_enable_hr", scale=1)
            line = gr.Markdown("", elem_id="txt2img_hr_summary")
        with gr.Row():
            hr_upscaler = gr.Dropdown(upscaler_choices(ctx), value=defaults.hr_upscaler, label="Upscaler",
                                      elem_id="txt2img_hr_upscaler")
            hr_second_pass_steps = gr.Slider(0, 150, value=0, step=1, label="Hires steps",
                                             info="0: as many as Sampling steps")
            denoising_strength = gr.Slider(0.01, 1, value=defaults.denoising_strength, step=0.01,
                                           label="Denoising strength")
        with gr.Row():
            hr_scale = gr.Slider(1, 4, value=defaults.hr_scale, step=0.05, label="Upscale by")
            hr_resize_x = gr.Slider(0, 2048, value=0, step=8, label="Resize width to")
            hr_resize_y = gr.Slider(0, 2048, value=0, step=8, label="Resize height to")
        with gr.Row():
            hr_sampler_name = gr.Dropdown([SAME_SAMPLER, *samplers.sampler_names()], value=SAME_SAMPLER,
                                          label="Hires sampling method")
            hr_scheduler = gr.Dropdown([SAME_SCHEDULER, *samplers.schedule_labels()], value=SAME_SCHEDULER,
                                       label="Hires schedule type")
        with gr.Row():
            hr_prompt = gr.Textbox("", label="Hires prompt", lines=2, placeholder="empty: the same prompt")
            hr_negative_prompt = gr.Textbox("", label="Hires negative prompt", lines=2,
                                            placeholder="empty: the same negative prompt")
    inputs = HiresInputs(enable_hr, hr_upscaler, hr_second_pass_steps, denoising_strength, hr_scale, hr_resize_x,
                         hr_resize_y, hr_sampler_name, hr_scheduler, hr_prompt, hr_negative_prompt)
    named = {"width": width, "height": height, **{n: getattr(inputs, n) for n in HIRES_INPUT_NAMES}}
    size_inputs = [width, height, enable_hr, hr_scale, hr_resize_x, hr_resize_y]
    gr.on([c.change for c in size_inputs], summary, None, line, inputs_kwargs=named, queue=False, api_name=False)
    gr.on(None, lambda: gr.Dropdown(choices=upscaler_choices(ctx)), None, hr_upscaler, api_name=False)
    return inputs
