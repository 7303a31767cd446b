"""The History tab: every saved image, newest first, paged; search, filters, favourites, trash and restore.

The core (:class:`~pipelines.history.History`) searches and moves files; this tab shows pages of results and
the picked image's parameters. Send to txt2img / img2img / inpaint / extras are wired by ``webui/wiring.py``
like PNG Info's buttons: they take the picked file itself (``image``) and its infotext (``parameters``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.context import AppContext
from pipelines.errors import ValidationError
from pipelines.history import History, HistoryEntry, HistoryNotFoundError, HistoryPage, HistoryQuery
from pipelines.history.records import parse_date, parse_size
from webui.components.forms import NamedForm

PAGE_SIZE = 48
ANY = ""
HELP = ("Words are searched in the prompts (`cat` finds *cats*); `\"a phrase\"`, `-word` to leave out, "
        "`neg:word` in the negative prompt.")


@dataclass(frozen=True)
class HistoryFilters(NamedForm):
    text: gr.Textbox
    model: gr.Dropdown
    mode: gr.Dropdown
    date_from: gr.Textbox
    date_to: gr.Textbox
    size: gr.Textbox
    favourites: gr.Checkbox
    trash: gr.Checkbox


@dataclass(frozen=True)
class HistoryTab:
    image: gr.State  # the picked image's file (Send to img2img / inpaint / extras)
    parameters: gr.Textbox  # its infotext (Send to txt2img)
    send_to_txt2img: gr.Button
    send_to_img2img: gr.Button
    send_to_inpaint: gr.Button
    send_to_extras: gr.Button


def query_from_form(*, text: str, model: str, mode: str, date_from: str, date_to: str, size: str, favourites: bool,
                    trash: bool, page: int) -> HistoryQuery:
    width, height = parse_size("size", size)
    return HistoryQuery(text=text or "", model=model or "", mode=mode or "",
                        date_from=parse_date("date_from", date_from), date_to=parse_date("date_to", date_to),
                        width=width, height=height,
                        favourite=True if favourites else None, trashed=bool(trash), page=max(1, int(page or 1)),
                        page_size=PAGE_SIZE).validate()


def caption(entry: HistoryEntry) -> str:
    text = entry.prompt.replace("\n", " ")
    return ("⭐ " if entry.favourite else "") + (text[:60] + "…" if len(text) > 60 else text or entry.path)


def page_label(page: HistoryPage) -> str:
    note = " · still indexing the outputs folder…" if page.indexing else ""
    return f"{page.total} image(s) · page {page.page} of {page.pages}{note}"


def details(entry: HistoryEntry) -> str:
    loras = f" · LoRAs: {', '.join(entry.loras)}" if entry.loras else ""
    where = f"in the trash (from `{entry.original}`)" if entry.trashed else f"`{entry.path}`"
    return (f"**{entry.mode or '?'}** · {entry.width}x{entry.height} · model {entry.model or '?'}{loras}\n\n"
            f"Saved {dt.datetime.fromtimestamp(entry.created):%Y-%m-%d %H:%M} · {where}")


def _failed(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), title="History")


def build(ctx: AppContext, tab: gr.Tab) -> HistoryTab:
    history: History = ctx.history
    with gr.Row(equal_height=True):
        text = gr.Textbox(label="Search the prompts", placeholder='e.g. fox "golden hour" -blurry neg:watermark',
                          scale=4, elem_id="history_text", info=HELP)
        search = gr.Button("Search", variant="primary", scale=1, elem_id="history_search")
        rescan = gr.Button("Rescan outputs", scale=1, elem_id="history_rescan")
    with gr.Row(equal_height=True):
        model = gr.Dropdown([ANY], value=ANY, label="Model", allow_custom_value=True, elem_id="history_model")
        mode = gr.Dropdown([ANY], value=ANY, label="Mode", allow_custom_value=True, elem_id="history_mode")
        date_from = gr.Textbox(label="From (YYYY-MM-DD)", elem_id="history_date_from")
        date_to = gr.Textbox(label="To (YYYY-MM-DD)", elem_id="history_date_to")
        size = gr.Textbox(label="Size (WxH, Wx, xH)", elem_id="history_size")
        favourites = gr.Checkbox(label="⭐ Favourites only", elem_id="history_favourites")
        trash = gr.Checkbox(label="🗑 Show the trash", elem_id="history_trash")
    filters = HistoryFilters(text, model, mode, date_from, date_to, size, favourites, trash)
    with gr.Row():
        with gr.Column(scale=3):
            label = gr.Markdown(elem_id="history_page_label")
            gallery = gr.Gallery(label="History", columns=6, interactive=False, allow_preview=False,
                                 elem_id="history_gallery")
            with gr.Row():
                prev_page = gr.Button("◀ Newer", elem_id="history_prev")
                next_page = gr.Button("Older ▶", elem_id="history_next")
        with gr.Column(scale=2):
            picked = gr.Image(label="Image", type="filepath", interactive=False, elem_id="history_image")
            about = gr.Markdown(elem_id="history_details")
            parameters = gr.Textbox(label="Parameters", lines=6, interactive=False, buttons=["copy"],
                                    elem_id="history_parameters")
            send = gr.Button("Send to txt2img", variant="primary", elem_id="history_send_txt2img")
            with gr.Row():
                send_img2img = gr.Button("Send to img2img", elem_id="history_send_img2img")
                send_inpaint = gr.Button("Send to inpaint", elem_id="history_send_inpaint")
                send_extras = gr.Button("Send to extras", elem_id="history_send_extras")
            with gr.Row():
                favourite = gr.Button("⭐ Favourite", elem_id="history_favourite")
                delete = gr.Button("🗑 Delete", variant="stop", elem_id="history_delete")
                restore = gr.Button("↩ Restore", visible=False, elem_id="history_restore")
    page = gr.Number(1, visible=False, precision=0)
    ids = gr.State([])
    selected = gr.Number(None, visible=False, precision=0, elem_id="history_selected")
    image = gr.State(None)
    shown = [gallery, ids, page, label, model, mode, selected]

    def show_page(page: int = 1, **form: Any) -> tuple:
        """One page of the saved images matching the search and filters, newest first."""
        try:
            result = history.search(query_from_form(page=page, **form))
        except ValidationError as exc:
            raise _failed(exc) from exc
        if result.entries == [] and result.page > 1 and result.total:  # past the end (images were deleted)
            result = history.search(query_from_form(page=result.pages, **form))
        items = []
        for entry in result.entries:
            try:
                items.append((str(history.thumbnail(entry)), caption(entry)))
            except HistoryNotFoundError:
                continue  # deleted outside Atelier since: the next rescan forgets it
        return (items, [e.id for e in result.entries], result.page, page_label(result),
                gr.Dropdown(choices=[ANY, *history.models()]), gr.Dropdown(choices=[ANY, *history.modes()]), None)

    def open_entry(entry_id: float | None) -> tuple:
        """The picked image: its file, parameters and actions."""
        if entry_id is None:
            return None, None, "", "", gr.Button(), gr.Button(visible=True), gr.Button(visible=False)
        try:
            entry = history.get(int(entry_id))
            path = str(history.file(entry))
        except HistoryNotFoundError as exc:
            raise _failed(exc) from exc
        star = "☆ Unfavourite" if entry.favourite else "⭐ Favourite"
        return (path, path, details(entry), entry.infotext, gr.Button(star), gr.Button(visible=not entry.trashed),
                gr.Button(visible=entry.trashed))

    opened = [picked, image, about, parameters, favourite, delete, restore]

    def pick(ids: list[int], evt: gr.SelectData) -> int | None:
        return ids[evt.index] if 0 <= evt.index < len(ids) else None

    def change(action: str, entry_id: float | None, current_page: int, **form: Any) -> tuple:
        """Favourite / unfavourite, delete (to the trash) or restore the picked image; then show the page again."""
        if entry_id is None:
            raise gr.Error("Pick an image first.", title="History")
        try:
            entry = history.get(int(entry_id))
            if action == "favourite":
                history.set_favourite(entry.id, not entry.favourite)
            else:
                getattr(history, action)(entry.id)
        except (HistoryNotFoundError, OSError) as exc:
            raise _failed(exc) from exc
        keep = action == "favourite"
        return (*show_page(current_page, **form)[:-1], entry.id if keep else None)

    def rescan_outputs(**form: Any) -> tuple:
        """Index new and changed image files in the outputs folder (A1111 and Forge ones too)."""
        report = history.rescan()
        gr.Info(f"{report.added} added, {report.updated} updated, {report.removed} gone"
                + (f", {len(report.failed)} unreadable" if report.failed else ""), title="History rescanned")
        return show_page(1, **form)

    named = filters.named()
    # One page request at a time, first come first served: a search typed while the tab's own first page is still
    # on its way is answered after it, never overwritten by it.
    in_order = {"concurrency_id": "history_page", "concurrency_limit": 1}
    search.click(show_page, None, shown, inputs_kwargs=named, api_name="history_search", **in_order).then(
        open_entry, [selected], opened, api_name=False)
    for event in (text.submit, favourites.change, trash.change, tab.select):
        event(show_page, None, shown, inputs_kwargs=named, api_name=False, **in_order).then(
            open_entry, [selected], opened, api_name=False)
    for button, step in ((prev_page, -1), (next_page, 1)):
        button.click(lambda p, s=step: max(1, int(p or 1) + s), [page], [page], api_name=False).then(
            show_page, None, shown, inputs_kwargs={"page": page, **named}, api_name=False)
    gallery.select(pick, [ids], [selected], api_name=False).then(open_entry, [selected], opened, api_name=False)
    selected_only = {"entry_id": selected, "current_page": page, **named}
    for button, action in ((favourite, "favourite"), (delete, "trash"), (restore, "restore")):
        button.click(partial_action(change, action), None, shown, inputs_kwargs=selected_only,
                     api_name=f"history_{action}").then(open_entry, [selected], opened, api_name=False)
    rescan.click(rescan_outputs, None, shown, inputs_kwargs=named, api_name="history_rescan")
    opener = gr.Button(visible=False)  # what a click on a thumbnail shows, by id, for API clients
    opener.click(open_entry, [selected], opened, api_name="history_open")
    return HistoryTab(image, parameters, send, send_img2img, send_inpaint, send_extras)


def partial_action(change: Any, action: str) -> Any:
    def run(**values: Any) -> tuple:
        return change(action, **values)

    run.__doc__ = change.__doc__
    return run

