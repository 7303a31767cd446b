"""The txt2img tab's "Hires. fix" accordion (A1111's layout): its inputs, and HiresFix <-> form values.

The accordion has one input per :class:`HiresFix` field, named like it (and like the API's flat
``hr_*`` fields), plus ``enable_hr``. :data:`LAYOUT` is the one place they are declared for the
UI: names, order, labels and widgets come from it; defaults and value types from HiresFix. A new
HiresFix field needs one entry there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, get_type_hints

import gradio as gr
from gradio.components import Component

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.imaging.latent_upscale import LATENT_UPSCALE_MODES
from pipelines.requests.hires import SAME_SAMPLER, SAME_SCHEDULER, HiresFix
from webui.components.forms import NamedForm


def upscaler_choices(ctx: AppContext) -> list[str]:
    """The latent modes, then the upscalers (None, Lanczos, Nearest, model files), as A1111's dropdown."""
    return [*LATENT_UPSCALE_MODES, *ctx.upscalers.names()]


@dataclass(frozen=True)
class Setting:
    """How the accordion shows one :class:`HiresFix` field."""

    label: str
    widget: type[Component]  # gr.Slider, gr.Dropdown or gr.Textbox
    options: Mapping[str, Any] = field(default_factory=dict)  # the widget's other keyword arguments
    choices: Callable[[AppContext], list[str]] | None = None  # a dropdown's choices (read when the page is built)
    same: str | None = None  # the choice that stands for None ("as the first pass")

    def build(self, ctx: AppContext, name: str, value: Any) -> Component:
        extra = {"choices": self.choices(ctx)} if self.choices else {}
        return self.widget(value=value, label=self.label, elem_id=f"txt2img_{name}", **extra, **self.options)


def _slider(low: float, high: float, step: float, **options: Any) -> dict[str, Any]:
    return {"minimum": low, "maximum": high, "step": step, **options}


# The accordion row by row: HiresFix field -> how it is shown.
LAYOUT: tuple[dict[str, Setting], ...] = (
    {"hr_upscaler": Setting("Upscaler", gr.Dropdown, choices=upscaler_choices),
     "hr_second_pass_steps": Setting("Hires steps", gr.Slider, _slider(0, 150, 1, info="0: as many as Sampling steps")),
     "denoising_strength": Setting("Denoising strength", gr.Slider, _slider(0.01, 1, 0.01))},
    {"hr_scale": Setting("Upscale by", gr.Slider, _slider(1, 4, 0.05)),
     "hr_resize_x": Setting("Resize width to", gr.Slider, _slider(0, 2048, 8)),
     "hr_resize_y": Setting("Resize height to", gr.Slider, _slider(0, 2048, 8))},
    {"hr_sampler_name": Setting("Hires sampling method", gr.Dropdown, same=SAME_SAMPLER,
                                choices=lambda ctx: [SAME_SAMPLER, *samplers.sampler_names()]),
     "hr_scheduler": Setting("Hires schedule type", gr.Dropdown, same=SAME_SCHEDULER,
                             choices=lambda ctx: [SAME_SCHEDULER, *samplers.schedule_labels()])},
    {"hr_prompt": Setting("Hires prompt", gr.Textbox, {"lines": 2, "placeholder": "empty: the same prompt"}),
     "hr_negative_prompt": Setting("Hires negative prompt", gr.Textbox,
                                   {"lines": 2, "placeholder": "empty: the same negative prompt"})},
)
SETTINGS: dict[str, Setting] = {name: setting for row in LAYOUT for name, setting in row.items()}
HIRES_INPUT_NAMES = ("enable_hr", *SETTINGS)  # the accordion's inputs, in its order


@dataclass(frozen=True)
class HiresInputs(NamedForm):
    """The accordion's inputs, named like the API fields (and :class:`HiresFix`'s)."""

    enable_hr: gr.Checkbox
    settings: dict[str, Component]  # HiresFix field -> its input, in the order of LAYOUT

    def named(self) -> dict[str, Component]:
        return {"enable_hr": self.enable_hr, **self.settings}


@cache
def _field_types() -> dict[str, Any]:
    return get_type_hints(HiresFix)


def _from_input(name: str, value: Any, default: Any) -> Any:
    """An input's value as HiresFix's field ``name`` holds it."""
    same, kind = SETTINGS[name].same, _field_types()[name]
    if same is not None and value in (None, "", same):
        return None
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    return value or default  # text: empty means HiresFix's default


def hires_from_values(**values: Any) -> HiresFix:
    """The accordion's values (by input name, ``enable_hr`` aside) as a HiresFix, whether or not it is
    enabled; an input left out takes HiresFix's default."""
    unknown = set(values) - set(SETTINGS)
    if unknown:
        raise TypeError(f"not a hires fix input: {', '.join(sorted(unknown))}")
    return HiresFix(**{f.name: _from_input(f.name, values[f.name], f.default) for f in fields(HiresFix)
                       if f.name in values})


def hires_values(hires: HiresFix, enabled: bool) -> dict[str, Any]:
    """Input name -> value showing ``hires`` (the inverse of :func:`hires_from_values`)."""
    shown = {name: getattr(hires, name) for name in SETTINGS}
    for name, setting in SETTINGS.items():
        if setting.same is not None and not shown[name]:
            shown[name] = setting.same
    return {"enable_hr": enabled, **shown}


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
    shown = hires_values(HiresFix(), enabled=False)
    settings: dict[str, Component] = {}
    with gr.Accordion("Hires. fix", open=False, elem_id="txt2img_hr"):
        with gr.Row():
            enable_hr = gr.Checkbox(False, label="Hires. fix", elem_id="txt2img_enable_hr", scale=1)
            line = gr.Markdown("", elem_id="txt2img_hr_summary")
        for row in LAYOUT:
            with gr.Row():
                for name, setting in row.items():
                    settings[name] = setting.build(ctx, name, shown[name])
    inputs = HiresInputs(enable_hr, settings)
    named = {"width": width, "height": height, **inputs.named()}
    size_inputs = [width, height, enable_hr, *(settings[n] for n in ("hr_scale", "hr_resize_x", "hr_resize_y"))]
    gr.on([c.change for c in size_inputs], summary, None, line, inputs_kwargs=named, queue=False, api_name=False)
    gr.on(None, lambda: gr.Dropdown(choices=upscaler_choices(ctx)), None, settings["hr_upscaler"], api_name=False)
    return inputs
