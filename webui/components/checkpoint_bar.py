"""The checkpoint selector at the top of every page (with refresh), as A1111 users expect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.context import AppContext
from pipelines.models.refs import ModelRecord
from webui.jobs import run_job


def checkpoint_choices(records: list[ModelRecord]) -> list[tuple[str, str]]:
    """(label, value) pairs: value is the model name the core resolves."""
    out = []
    for record in records:
        if record.problem:
            label = f"{record.name} (unsupported)"
        elif not record.installed:
            label = f"{record.name} (download from Hub)"
        else:
            label = record.title
        out.append((label, record.name))
    return out


@dataclass
class CheckpointBar:
    dropdown: gr.Dropdown
    refresh: gr.Button
    status: gr.Markdown
    current: Callable[[], tuple]  # (dropdown, status) for the shared selection, run on page load
    row: gr.Row  # the selector's row: the page adds its quick settings here (``with bar.row:``)
    refreshed: Any  # the refresh button's event (every kind of model rescanned): ``.then()`` lists follow it


def build(ctx: AppContext) -> CheckpointBar:
    store = ctx.store
    with gr.Row(equal_height=True) as row:
        dropdown = gr.Dropdown(
            choices=checkpoint_choices(store.checkpoints()),
            value=ctx.selection.current,
            label="Stable Diffusion checkpoint",
            info="A file or folder in models/Stable-diffusion, or a Hub repo id (type it to download)",
            allow_custom_value=True,
            scale=6,
            elem_id="checkpoint",
        )
        refresh = gr.Button("🔄 Refresh", scale=1, elem_id="checkpoint_refresh")
    status = gr.Markdown(f"`{store.status()}`", elem_id="model_status")

    def select_checkpoint(checkpoint: str, progress: gr.Progress = gr.Progress()):
        loaded = run_job(lambda report: ctx.selection.select(checkpoint, report), progress,
                         error_title="Cannot load model")
        # remembered in config.json like A1111's setting, so the next start selects it again
        ctx.options.update({"sd_model_checkpoint": loaded.record.title})
        return (gr.Dropdown(choices=checkpoint_choices(store.checkpoints()), value=loaded.record.name),
                f"`{loaded.record.title}` · {loaded.record.kind.label} · `{store.status(loaded)}`")

    def refresh_checkpoints():
        return gr.Dropdown(choices=checkpoint_choices(store.checkpoints(refresh=True)), value=ctx.selection.current)

    def current_checkpoint():
        """The shared selection and its status line, for a freshly loaded page."""
        selected = ctx.selection.current
        loaded = store.loaded(selected)
        status_line = (f"`{loaded.record.title}` · {loaded.record.kind.label} · `{store.status(loaded)}`"
                       if loaded else f"`{store.status()}`")
        return gr.Dropdown(choices=checkpoint_choices(store.checkpoints()), value=selected), status_line

    dropdown.input(select_checkpoint, [dropdown], [dropdown, status], api_name="select_checkpoint",
                   concurrency_id="gpu", concurrency_limit=1)
    refreshed = refresh.click(refresh_checkpoints, None, [dropdown], api_name="refresh_checkpoints")
    return CheckpointBar(dropdown, refresh, status, current_checkpoint, row, refreshed)
