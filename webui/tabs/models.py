"""The Models tab: every model of every kind with what is in memory, unloading, Hub search and downloads."""

from __future__ import annotations

import gradio as gr

from pipelines.context import AppContext
from pipelines.models import hub_search
from pipelines.models.hub_search import HubModel, HubSearchUnavailable
from pipelines.models.memory import fmt
from pipelines.models.refs import ModelRecord
from pipelines.models.store import MemoryEntry, ModelStore
from webui.components.checkpoint_bar import CheckpointBar, checkpoint_choices
from webui.errors import user_error
from webui.jobs import run_job

COLUMNS = ["Name", "Architecture", "Source", "Type", "Size", "In memory", "In use", "Location / problem"]
RESULT_COLUMNS = ["Repo", "Installs as", "Downloads", "Likes", "Licence", "Size", "Pipeline / library", "Note"]
LARGEST = "largest .safetensors"


def model_rows(store: ModelStore, records: list[ModelRecord] | None = None) -> list[list[str]]:
    """One row per model of every kind; what is in memory shows its tier and bytes."""
    memory = {entry.key: entry for entry in store.memory()}
    rows = []
    for r in store.records() if records is None else records:
        entry = memory.get(r.ref.key)
        arch = r.kind.label if r.kind else (r.architecture.label if r.architecture else "—")
        rows.append([
            r.title, arch, r.ref.kind.value + ("" if r.installed else " (not downloaded)"), r.type.label,
            fmt(r.size_bytes) if r.size_bytes else "—",
            f"{entry.tier.value} · {fmt(entry.size_bytes)}" if entry else "",
            "yes" if entry and entry.in_use else "",
            r.problem or str(r.path or r.ref.location),
        ])
    return rows


def loaded_choices(entries: list[MemoryEntry]) -> list[tuple[str, str]]:
    return [(f"{e.name} ({e.type.label}, {e.tier.value}, {fmt(e.size_bytes)})", e.key) for e in entries]


def result_rows(results: list[HubModel]) -> list[list[str | int]]:
    return [[m.repo_id, m.kind_label, m.downloads, m.likes, m.license or "—",
             fmt(m.size_bytes) if m.size_bytes else "—", m.pipeline_tag or m.library or "—", m.problem or m.note]
            for m in results]


def build(ctx: AppContext, bar: CheckpointBar) -> None:
    store = ctx.store
    table = gr.Dataframe(model_rows(store), headers=COLUMNS, interactive=False, elem_id="models_table")
    with gr.Row(equal_height=True):
        unload_pick = gr.Dropdown(loaded_choices(store.memory()), value=None, label="Loaded models", scale=4,
                                  elem_id="models_loaded")
        unload = gr.Button("Unload", scale=1, elem_id="models_unload")
        show = gr.Button("Refresh list", scale=1, elem_id="models_refresh")
        rescan = gr.Button("Rescan folders", scale=1)
    with gr.Row(equal_height=True):
        query = gr.Textbox(label="Search the Hugging Face Hub", placeholder="e.g. sdxl, pixel art lora, esrgan",
                           scale=4, elem_id="models_search_query")
        search = gr.Button("Search", scale=1, elem_id="models_search")
    search_note = gr.Markdown(elem_id="models_search_note")
    results_table = gr.Dataframe(headers=RESULT_COLUMNS, interactive=False, elem_id="models_search_results")
    results = gr.State([])
    with gr.Row(equal_height=True):
        install_pick = gr.Dropdown([], label="Result to install", scale=3, elem_id="models_install_pick")
        install_file = gr.Dropdown([LARGEST], value=LARGEST, label="File", scale=2, elem_id="models_install_file")
        install = gr.Button("Install", scale=1, elem_id="models_install")
    with gr.Row(equal_height=True):
        repo_id = gr.Textbox(label="Download from the Hugging Face Hub", placeholder="org/name (diffusers layout)",
                             scale=4, elem_id="models_repo_id")
        download = gr.Button("Download", scale=1, elem_id="models_download")
    result = gr.Markdown()

    def show_models():
        """Every model, and the loaded ones to pick for unloading."""
        return model_rows(store), gr.Dropdown(choices=loaded_choices(store.memory()), value=None)

    def unload_model(key: str | None):
        """Drop one loaded model from memory (refused while a job uses it)."""
        if not key:
            raise gr.Error("Pick a loaded model to unload", title="Cannot unload")
        name = next((e.name for e in store.memory() if e.key == key), key)
        message = f"Unloaded **{name}**" if store.unload(key) else f"**{name}** is not loaded or is in use by a job"
        return (*show_models(), message)

    def search_models(query: str):
        """Hub repos whose id contains the query, most downloaded first, with the kind each installs as."""
        try:
            found = hub_search.search_hub(ctx.settings, query)
        except HubSearchUnavailable as exc:
            return [], [], gr.Dropdown(choices=[], value=None), f"⚠️ {exc}"
        except Exception as exc:
            raise user_error(exc, title="Cannot search") from exc
        choices = [(f"{m.repo_id} ({m.kind_label})", m.repo_id) for m in found if m.installable]
        note = f"{len(found)} result(s), {len(choices)} installable" if found else f"Nothing matches {query!r}"
        return result_rows(found), found, gr.Dropdown(choices=choices, value=choices[0][1] if choices else None), note

    def pick_result(results: list[HubModel], repo: str | None):
        model = next((m for m in results if m.repo_id == repo), None)
        files = list(model.files) if model and len(model.files) > 1 else []
        return gr.Dropdown(choices=[LARGEST, *files], value=LARGEST)

    def install_model(results: list[HubModel], repo: str | None, filename: str | None,
                      progress: gr.Progress = gr.Progress()):
        """Install the picked search result as its kind, reporting bytes."""
        model = next((m for m in results if m.repo_id == repo), None)
        if model is None:
            raise gr.Error("Search the Hub and pick a result to install", title="Cannot install")
        chosen = None if filename in (None, "", LARGEST) else filename
        record = run_job(lambda report: hub_search.install(store, model, report, filename=chosen), progress,
                         error_title="Cannot install")
        return (model_rows(store), f"Installed **{record.name}** as {record.type.label} ({fmt(record.size_bytes)})",
                gr.Dropdown(choices=checkpoint_choices(store.checkpoints())))

    def download_model(repo_id: str, progress: gr.Progress = gr.Progress()):
        """Fetch a Hub repo into the HF cache, reporting bytes."""
        if not repo_id or repo_id.count("/") != 1:
            raise gr.Error("Give a Hub repo id such as org/name", title="Cannot download")
        record = run_job(lambda report: store.download(repo_id.strip(), report), progress,
                         error_title="Cannot download")
        return (model_rows(store), f"Downloaded **{record.name}**",
                gr.Dropdown(choices=checkpoint_choices(store.checkpoints())))

    def rescan_models():
        store.refresh()
        return model_rows(store), gr.Dropdown(choices=checkpoint_choices(store.checkpoints()))

    after = dict(fn=show_models, inputs=None, outputs=[table, unload_pick], api_visibility="private")
    show.click(show_models, None, [table, unload_pick], api_name="list_models")
    unload.click(unload_model, [unload_pick], [table, unload_pick, result], api_name="unload_model")
    gr.on([search.click, query.submit], search_models, [query], [results_table, results, install_pick, search_note],
          api_name="search_models")
    install_pick.change(pick_result, [results, install_pick], [install_file], api_visibility="private")
    install.click(install_model, [results, install_pick, install_file], [table, result, bar.dropdown],
                  api_name="install_model").then(**after)
    download.click(download_model, [repo_id], [table, result, bar.dropdown], api_name="download_model").then(**after)
    rescan.click(rescan_models, None, [table, bar.dropdown], api_name="rescan_models").then(**after)
