"""The settings tab: how this process runs (read-only; set by launch flags)."""

from __future__ import annotations

import dataclasses

import gradio as gr

from pipelines.context import AppContext
from webui.components import cluster_panel, decoder_settings
from webui.tabs import extension_tabs


def settings_rows(ctx: AppContext) -> list[list[str]]:
    rows = [[f.name, str(getattr(ctx.settings, f.name))] for f in dataclasses.fields(ctx.settings)]
    rows += [["device (resolved)", str(ctx.store.device)], ["dtype (resolved)", str(ctx.store.dtype)],
             ["precision (resolved)", ctx.store.precision.describe()],
             *[["model cache", line] for line in ctx.store.budgets()]]
    return rows


def build(ctx: AppContext) -> None:
    gr.Markdown("Settings come from `launch.py` flags (see the README). The current model's attention and memory "
                "choices are shown under the checkpoint selector.")
    cluster_panel.build(ctx)  # embedded, or the Ray cluster's replicas (--ray)
    decoder_settings.build(ctx)  # live preview method, VAE type for decode / encode (config.json options)
    gr.Dataframe(settings_rows(ctx), headers=["setting", "value"], interactive=False)
    extension_tabs.build_options(ctx)  # the settings extensions declare (config.json)
