"""The "⚡ Fast preset" button of txt2img and img2img: the selected model's few-step settings
(:func:`pipelines.presets.fast_preset`) put into the form, and the TAESD final decoder switched on when one
for the model's family is installed (the ``sd_vae_decode_method`` option, as in A1111's settings)."""

from __future__ import annotations

import gradio as gr

from pipelines import presets
from pipelines.context import AppContext
from pipelines.errors import AtelierError
from pipelines.requests.decoders import TAESD
from webui.components.quick_settings import save
from webui.errors import user_error


def build(ctx: AppContext, tab: str, checkpoint: gr.Dropdown, prompt: gr.Textbox, sampler_name: gr.Dropdown,
          scheduler: gr.Dropdown, steps: gr.Slider, cfg_scale: gr.Slider) -> gr.Button:
    """The button, at the current place in the layout, wired to fill the four fields (event ``<tab>_fast_preset``)."""
    button = gr.Button("⚡ Fast preset", size="sm", elem_id=f"{tab}_fast_preset")

    def fast_preset(checkpoint: str | None, prompt: str | None) -> tuple[str, str, int, float]:
        """Steps, CFG scale and sampler for the selected Turbo / LCM (or LCM-LoRA) model, and the TAESD decoder."""
        try:
            preset = presets.fast_preset(ctx.store, checkpoint or ctx.selection.current, prompt or "")
        except AtelierError as exc:
            raise user_error(exc, title="No fast preset") from exc
        if preset.sd_vae_decode_method == TAESD:
            save(ctx.options, "sd_vae_decode_method", TAESD)
        gr.Info(f"⚡ {preset.note}")
        return preset.sampler_name, preset.scheduler, preset.steps, preset.cfg_scale

    fast_preset.__name__ = f"{tab}_fast_preset"
    button.click(fast_preset, [checkpoint, prompt], [sampler_name, scheduler, steps, cfg_scale],
                 api_name=f"{tab}_fast_preset", queue=False)
    return button
