"""The Extensions tab's Available list: an index in A1111's ``index.json`` format, searched, filtered
by tag and sorted, installed ones marked, and one picked row installed.

The index is fetched when the user presses Load (from the URL in the box, by default the
``extensions_index_url`` option); when that fails the last fetched copy is shown with its age, so the
list works offline. Picking a row (a click on it, or the dropdown) and pressing Install clones it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gradio as gr

from pipelines.context import AppContext
from pipelines.extension_manager.errors import IndexUnavailable
from pipelines.extension_manager.index import SORT_ORDERS, AvailableExtension, ExtensionIndex, age_text
from webui.errors import user_error
from webui.jobs import run_job

COLUMNS = ["Extension", "Description", "Tags", "Added", "Stars", "Installed", "URL"]


def index_note(index: ExtensionIndex) -> str:
    age = age_text(time.time() - index.fetched_at)
    note = f"{len(index.entries)} extensions in the index from {index.url}, fetched {age}"
    if index.from_cache:
        note = f"⚠️ Offline copy: {note}. ({index.error})"
    return note


def available_rows(found: list[AvailableExtension]) -> list[list[Any]]:
    return [[a.entry.name, a.entry.description, ", ".join(a.entry.tags), a.entry.added, a.entry.stars,
             "installed" if a.installed else "", a.entry.url] for a in found]


def install_choices(found: list[AvailableExtension]) -> list[tuple[str, str]]:
    return [(a.entry.name, a.entry.url) for a in found if not a.installed]


def build(ctx: AppContext, installed_outputs: list, refresh_installed: Callable[[], tuple]) -> None:
    manager = ctx.extension_manager
    with gr.Row(equal_height=True):
        url = gr.Textbox(manager.index_url(), label="Index URL (A1111's index.json format)", scale=4,
                         elem_id="extensions_index_url")
        load = gr.Button("Load", scale=1, elem_id="extensions_index_load")
    note = gr.Markdown("Press Load to read the index (the last copy is kept for offline use).",
                       elem_id="extensions_index_note")
    with gr.Row(equal_height=True):
        query = gr.Textbox(label="Search", scale=3, elem_id="extensions_index_search")
        tags = gr.Dropdown([], value=[], multiselect=True, label="Only with tags", scale=2,
                           elem_id="extensions_index_tags")
        hide = gr.Dropdown([], value=[], multiselect=True, label="Hide tags", scale=2, elem_id="extensions_index_hide")
        sort = gr.Radio(list(SORT_ORDERS), value="newest", label="Sort", scale=2, elem_id="extensions_index_sort")
    table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, elem_id="extensions_index_table")
    with gr.Row(equal_height=True):
        pick = gr.Dropdown([], value=None, label="Extension to install (or click its row)", scale=4,
                           elem_id="extensions_index_pick")
        install = gr.Button("Install", variant="primary", scale=1, elem_id="extensions_index_install")
    result = gr.Markdown(elem_id="extensions_index_result")
    index = gr.State(None)
    filters = [query, tags, hide, sort]

    def listing(current: ExtensionIndex | None, query: str, tags: list[str], hide: list[str], sort: str):
        if current is None:
            return [], gr.Dropdown(choices=[], value=None)
        found = manager.available(current, query=query or "", tags=tags or [], hide_tags=hide or [],
                                  sort=sort if sort in SORT_ORDERS else "newest")
        return available_rows(found), gr.Dropdown(choices=install_choices(found), value=None)

    def load_index(index_url: str, query: str, tags: list[str], hide: list[str], sort: str):
        """Fetch the index (or read its saved copy) and list it."""
        try:
            loaded = manager.index(url=index_url or None)
        except IndexUnavailable as exc:
            return None, f"⚠️ {exc}", gr.Dropdown(choices=[]), gr.Dropdown(choices=[]), [], gr.Dropdown(choices=[])
        except Exception as exc:
            raise user_error(exc, title="Cannot load the index") from exc
        names = sorted(loaded.tags) or sorted({t for e in loaded.entries for t in e.tags})
        kept = [t for t in tags or [] if t in names]
        hidden = [t for t in hide or [] if t in names]
        rows, choices = listing(loaded, query, kept, hidden, sort)
        return (loaded, index_note(loaded), gr.Dropdown(choices=names, value=kept),
                gr.Dropdown(choices=names, value=hidden), rows, choices)

    def pick_row(current: ExtensionIndex | None, evt: gr.SelectData):
        """A click on a row picks that extension (the URL column identifies it)."""
        row = evt.row_value if evt is not None else None
        if not row or row[COLUMNS.index("Installed")]:
            return gr.Dropdown()  # an installed one is not offered again
        return gr.Dropdown(value=row[-1])

    def install_picked(picked: str | None, progress: gr.Progress = gr.Progress()):
        """Install the picked index entry (its URL), as Install from URL does."""
        if not picked:
            raise gr.Error("Pick an extension that is not installed yet", title="Nothing to install")
        record = run_job(lambda report: manager.install(picked, on_progress=report), progress,
                         error_title="Cannot install")
        return (*refresh_installed(), f"Installed **{record.name}**. Apply and restart UI to load it.")

    load.click(load_index, [url, *filters], [index, note, tags, hide, table, pick], api_name="extensions_index_load")
    gr.on([query.submit, tags.change, hide.change, sort.change], listing, [index, *filters], [table, pick],
          api_name="extensions_index_search")
    table.select(pick_row, [index], [pick], api_visibility="private")
    install.click(install_picked, [pick], [*installed_outputs, result], api_name="extensions_install_from_index"
                  ).success(listing, [index, *filters], [table, pick], api_visibility="private")
