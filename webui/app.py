"""Compose the page: the checkpoint bar on top, one tab per mode or tool."""

from __future__ import annotations

import gradio as gr

from pipelines.context import AppContext
from webui.components import checkpoint_bar
from webui.tabs import models, settings, txt2img

TITLE = "Atelier"


def build_blocks(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"## {TITLE}")
        bar = checkpoint_bar.build(ctx)
        with gr.Tabs():
            with gr.Tab("txt2img", id="txt2img"):
                txt2img.build(ctx, bar)
            with gr.Tab("Models", id="models"):
                models.build(ctx, bar)
            with gr.Tab("Settings", id="settings"):
                settings.build(ctx)
        # The checkpoint selection is shared by every browser tab, as in A1111.
        demo.load(bar.current, None, [bar.dropdown, bar.status], api_name=False)
    demo.queue(default_concurrency_limit=4)
    return demo
