"""The txt2img form when an unconditional pixel-space checkpoint (DDPM / DDIM) is selected: the prompt boxes are off
(the hint line under the checkpoint says why), the sampler menu offers DDPM and DDIM, and steps reach 1000 with the
model's own default; selecting a text-to-image checkpoint again brings the usual form back."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.errors import AtelierError
from pipelines.modes.unconditional import suggested_settings
from pipelines.requests import Txt2ImgRequest

TEXT_MAX_STEPS = 150  # the form's usual slider limit


def form_updates(ctx: AppContext, checkpoint: str | None, sampler_name: str | None,
                 steps: float | None) -> tuple[Any, Any, Any, Any]:
    """Updates for (prompt, negative prompt, sampler, steps) that fit ``checkpoint``; never raises."""
    try:
        record = ctx.store.resolve(checkpoint) if checkpoint else None
    except AtelierError:
        record = None
    suggested = suggested_settings(record)
    if suggested is not None:
        default_sampler, default_steps = suggested
        names = samplers.unconditional_sampler_names()
        keep = sampler_name in names  # DDIM chosen earlier stays; otherwise the model's own DDPM and steps
        return (gr.update(interactive=False), gr.update(interactive=False),
                gr.update(choices=names, value=sampler_name if keep else default_sampler),
                gr.update(maximum=samplers.DDPM.max_steps, value=steps if keep else default_steps))
    # A text model: values are sent only where they must change (DDPM's sampler or steps past the usual limit), so
    # a refit that lands late (the page load's, a checkpoint's title gaining its hash) never undoes what was typed.
    names = samplers.sampler_names()
    sampler = gr.update(choices=names) if sampler_name in names else \
        gr.update(choices=names, value=Txt2ImgRequest.sampler_name)
    steps_update = gr.update(maximum=TEXT_MAX_STEPS) if steps is not None and steps <= TEXT_MAX_STEPS else \
        gr.update(maximum=TEXT_MAX_STEPS, value=Txt2ImgRequest.steps)
    return gr.update(interactive=True), gr.update(interactive=True), sampler, steps_update


def wire(ctx: AppContext, checkpoint: gr.Dropdown, prompt: gr.Textbox, negative_prompt: gr.Textbox,
         sampler_name: gr.Dropdown, steps: gr.Slider, status: gr.Markdown | None = None) -> None:
    """Refit the form whenever the selected checkpoint changes, and when the checkpoint bar's ``status`` does
    (the page load sets it, so a page opened on an unconditional model starts fitted)."""

    def refit(checkpoint_value: str | None, sampler_value: str | None, steps_value: float | None):
        return form_updates(ctx, checkpoint_value, sampler_value, steps_value)

    checkpoint.change(refit, [checkpoint, sampler_name, steps], [prompt, negative_prompt, sampler_name, steps],
                      api_name="txt2img_model_form", queue=False)
    if status is not None:
        status.change(refit, [checkpoint, sampler_name, steps], [prompt, negative_prompt, sampler_name, steps],
                      api_name=False, queue=False)
