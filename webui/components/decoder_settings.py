"""The Settings tab's "Live previews and VAE type" block: A1111's "Live preview method" (``show_progress_type``)
and "VAE type for decode / encode" (``sd_vae_decode_method`` / ``sd_vae_encode_method``), options saved in
config.json on change, as A1111 applies its settings to every later job."""

from __future__ import annotations

import gradio as gr

from pipelines.context import AppContext
from pipelines.models.architecture import Architecture
from pipelines.models.kinds import ModelType
from pipelines.networks.taesd import find_taesd
from pipelines.requests.decoders import DECODE_METHODS, PREVIEW_METHODS
from webui.components.quick_settings import save

# option key, label, choices, info
DECODER_OPTIONS = (
    ("show_progress_type", "Live preview method", PREVIEW_METHODS,
     "Approx cheap: a colour map, free; TAESD: a tiny decoder, sharp and cheap; Full: the model's VAE, slow"),
    ("sd_vae_decode_method", "VAE type for decode", DECODE_METHODS,
     "TAESD decodes the final image in a fraction of the time, a little softer; written in the infotext"),
    ("sd_vae_encode_method", "VAE type for encode", DECODE_METHODS, "How img2img encodes its init image"),
)


def taesd_status(ctx: AppContext) -> str:
    """Which TAESDs are installed, and where to put a missing one."""
    parts = []
    for label, architecture, repo in (("SD 1.x / 2.x", None, "madebyollin/taesd"),
                                      ("SDXL", Architecture.SDXL, "madebyollin/taesdxl")):
        record = find_taesd(ctx.store, architecture)
        parts.append(f"{label}: **{record.name}**" if record else f"{label}: not installed ({repo})")
    folder = ctx.store.registry.folders(ModelType.TAESD)[0]
    return f"TAESD · {' · '.join(parts)} · folder `{folder}`, or download the repo in the Models tab"


def build(ctx: AppContext) -> dict[str, gr.Dropdown]:
    """The three dropdowns (each showing the saved option at page load), saving on change."""
    inputs: dict[str, gr.Dropdown] = {}
    with gr.Accordion("Live previews and VAE type", open=True, elem_id="settings_decoders"):
        gr.Markdown(lambda: taesd_status(ctx), elem_id="settings_taesd_status")
        with gr.Row():
            for key, label, choices, info in DECODER_OPTIONS:
                inputs[key] = gr.Dropdown(list(choices), value=lambda key=key: ctx.options.values()[key], label=label,
                                          info=info, elem_id=f"setting_{key}")

    for key, component in inputs.items():
        def set_option(value: str | None, key: str = key) -> None:
            save(ctx.options, key, value)

        set_option.__name__ = f"set_{key}"
        component.change(set_option, component, None, api_name=f"set_{key}", queue=False, show_progress="hidden",
                         trigger_mode="always_last")
    return inputs
