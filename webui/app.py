"""Compose the page: the checkpoint bar with the quick settings on top, one tab per mode or tool."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines.context import AppContext
from pipelines.networks.vae import vae_choices
from webui import wiring
from webui.components import checkpoint_bar, model_hint, quick_settings, style_panel
from webui.components.token_counter import TokenizerCache
from webui.queueing import free_closed_page
from webui.tabs import (
    extension_tabs,
    extensions,
    extras,
    history,
    imagine,
    img2img,
    models,
    png_info,
    settings,
    txt2img,
)

TITLE = "Atelier"


def build_blocks(ctx: AppContext, *, restart: Callable[[], None] | None = None) -> gr.Blocks:
    """The page; ``restart`` (from launch.py) restarts the server for the Extensions tab's Apply button."""
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"## {TITLE}")
        bar = checkpoint_bar.build(ctx)
        with bar.row:  # A1111's quicksettings: beside the checkpoint selector
            quick = quick_settings.build(ctx.options, partial(vae_choices, ctx.store), bar.refreshed)
        model_hint.build(ctx, bar.dropdown, bar.status)  # Turbo/LCM steps and CFG, SD2 prediction
        tokenizers = TokenizerCache(ctx.selection)  # the token counters' tokenizers, shared by both tabs
        with gr.Tabs() as tabs:
            with gr.Tab("txt2img", id="txt2img"):
                txt2img_tab = txt2img.build(ctx, bar, quick, tokenizers)
            with gr.Tab("Imagine", id="imagine"):
                imagine.build(ctx, txt2img_tab.form)
            with gr.Tab("img2img", id="img2img"):
                img2img_tab = img2img.build(ctx, bar, quick, tokenizers)
            with gr.Tab("Upscale", id="extras"):
                upscale = extras.build(ctx)
            with gr.Tab("PNG Info", id="png_info"):
                png = png_info.build(ctx, bar)
            with gr.Tab("History", id="history") as history_page:
                saved = history.build(ctx, history_page)
            with gr.Tab("Models", id="models"):
                models.build(ctx, bar)
            extension_tabs.build_tabs(ctx)  # tabs extensions add
            with gr.Tab("Settings", id="settings"):
                settings.build(ctx)
            with gr.Tab("Extensions", id="extensions") as extensions_tab:
                extensions.build(ctx, extensions_tab, restart=restart)
        form = txt2img_tab.form
        paste = txt2img.paste_handler(ctx, form, quick)

        def paste_to_txt2img(infotext: str, **form_values: Any) -> dict[Component | gr.Tabs, Any]:
            """Fill the txt2img form from an image's parameters and switch to the txt2img tab."""
            switch_to = "txt2img" if (infotext or "").strip() else "png_info"
            return {**paste(infotext, **form_values), tabs: gr.Tabs(selected=switch_to)}

        png.send_to_txt2img.click(paste_to_txt2img, [png.parameters], [*form.components(), *quick.components(), tabs],
                                  inputs_kwargs=form.named(), api_name="paste_to_txt2img")
        def history_to_txt2img(infotext: str, **form_values: Any) -> dict[Component | gr.Tabs, Any]:
            """Fill the txt2img form from the parameters of the image picked in History; switch to txt2img."""
            if not (infotext or "").strip():
                raise gr.Error("Pick an image with generation parameters in History first.", title="No parameters")
            return paste_to_txt2img(infotext, **form_values)

        saved.send_to_txt2img.click(history_to_txt2img, [saved.parameters],
                                    [*form.components(), *quick.components(), tabs], inputs_kwargs=form.named(),
                                    api_name="history_send_to_txt2img")
        pages = wiring.Pages(tabs, form, txt2img_tab.gallery, txt2img_tab.info, img2img_tab, upscale, png, quick)
        wiring.wire(ctx, pages)
        wiring.wire_file_senders(ctx, pages, saved, "history", "the image picked in History",
                                 "Pick an image in History first.")
        style_panel.wire(ctx.styles, [txt2img_tab.styles, img2img_tab.styles])
        # The checkpoint selection is shared by every browser tab, as in A1111.
        demo.load(bar.current, None, [bar.dropdown, bar.status], api_name=False)
        demo.load(quick.current, None, quick.components(), api_name=False)  # changed by another page or the API
        demo.load(upscale.refresh_upscalers, None, [upscale.form.upscaler_1, upscale.form.upscaler_2],
                  api_name=False)
        demo.unload(free_closed_page(ctx))  # a closed tab's jobs still waiting in the device queue go
    demo.queue(default_concurrency_limit=4)
    return demo
