"""The models tab: what is installed, and downloading a Hub repo with byte progress."""

from __future__ import annotations

import gradio as gr

from pipelines.context import AppContext
from pipelines.models.memory import fmt
from pipelines.models.refs import ModelRecord
from webui.components.checkpoint_bar import CheckpointBar, checkpoint_choices
from webui.errors import user_error
from webui.jobs import Finished, describe, stream

COLUMNS = ["Title", "Kind", "Source", "Size", "Loaded", "Location / problem"]


def model_rows(ctx: AppContext, records: list[ModelRecord]) -> list[list[str]]:
    loaded = set(ctx.store.cache.keys())
    return [
        [
            r.title,
            r.kind.label if r.kind else "—",
            r.ref.kind.value + ("" if r.installed else " (not downloaded)"),
            fmt(r.size_bytes) if r.size_bytes else "—",
            "yes" if r.ref.key in loaded else "",
            r.problem or str(r.path or r.ref.location),
        ]
        for r in records
    ]


def build(ctx: AppContext, bar: CheckpointBar) -> None:
    store = ctx.store
    table = gr.Dataframe(model_rows(ctx, store.checkpoints()), headers=COLUMNS, interactive=False,
                         elem_id="models_table")
    with gr.Row(equal_height=True):
        repo_id = gr.Textbox(label="Download from the Hugging Face Hub", placeholder="org/name (diffusers layout)",
                             scale=4, elem_id="models_repo_id")
        download = gr.Button("Download", scale=1, elem_id="models_download")
        rescan = gr.Button("Rescan folders", scale=1)
    result = gr.Markdown()

    def download_model(repo_id: str, progress: gr.Progress = gr.Progress()):
        """Fetch a Hub repo into the HF cache, reporting bytes."""
        if not repo_id or repo_id.count("/") != 1:
            raise gr.Error("Give a Hub repo id such as org/name", title="Cannot download")
        for item in stream(lambda report: store.download(repo_id.strip(), report)):
            if isinstance(item, Finished):
                if item.error is not None:
                    raise user_error(item.error, title="Cannot download")
                records = store.checkpoints()
                return (model_rows(ctx, records), f"Downloaded **{item.result.name}**",
                        gr.Dropdown(choices=checkpoint_choices(records)))
            progress(item.fraction, desc=describe(item))

    def rescan_models():
        records = store.checkpoints(refresh=True)
        return model_rows(ctx, records), gr.Dropdown(choices=checkpoint_choices(records))

    download.click(download_model, [repo_id], [table, result, bar.dropdown], api_name="download_model")
    rescan.click(rescan_models, None, [table, bar.dropdown], api_name="rescan_models")
