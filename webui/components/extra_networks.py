"""The "Extra networks" panel under a tab's prompt (A1111's cards): Checkpoints, Textual Inversion, LoRA and VAE.

The cards come from :mod:`pipelines.networks.cards`. Each panel tab's grid is a ``gr.HTML`` whose
script reports a click on a card as its ``click`` event (with the card's name and which prompt box
had the focus last, A1111's "active prompt") and a click on a card's i button as its ``details`` event.
API clients (gradio_client) reach the same functions through endpoints of hidden buttons:
``/{prefix}_extra_networks_insert`` (a LoRA or embedding into a prompt), ``/{prefix}_extra_networks_select``
(a checkpoint or VAE), ``/{prefix}_extra_networks_details`` and ``/{prefix}_extra_networks_search``.
Previews are inlined as small JPEG data URIs, so no model folder is served over HTTP.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from pipelines.context import AppContext
from pipelines.errors import AtelierError
from pipelines.networks.cards import (
    NetworkCard,
    NetworkTab,
    build_cards,
    card_details,
    find_card_record,
    toggle_in_prompt,
)
from pipelines.networks.vae import vae_title
from webui.components.checkpoint_bar import CheckpointBar
from webui.components.quick_settings import QuickSettings
from webui.errors import user_error
from webui.jobs import run_job

THUMBNAIL_PX = 192
PROMPT_TARGETS = ("prompt", "negative_prompt")

# The grid's script: a card click -> the "click" event with the card and the prompt box focused last;
# its i button -> the "details" event. The listeners sit on the grid, so re-rendered cards need none of their own.
_GRID_JS = """
let target = 'prompt';
document.addEventListener('focusin', (e) => {
  if (e.target.closest('#PREFIX_negative_prompt')) target = 'negative_prompt';
  else if (e.target.closest('#PREFIX_prompt')) target = 'prompt';
});
element.addEventListener('click', (e) => {
  const card = e.target.closest('[data-card]');
  if (!card) return;
  if (e.target.closest('.card-details')) { trigger('details', {name: card.dataset.card}); return; }
  trigger('click', {name: card.dataset.card, box: target});
});
"""

_GRID_CSS = """
.cards { display: flex; flex-wrap: wrap; gap: 8px; }
.card { position: relative; width: 150px; height: 190px; border-radius: 8px; overflow: hidden; cursor: pointer;
        border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); }
.card img, .card .no-preview { width: 100%; height: 100%; object-fit: cover; }
.card .no-preview { display: flex; align-items: center; justify-content: center; font-size: 48px; opacity: .4; }
.card .card-text { position: absolute; bottom: 0; left: 0; right: 0; padding: 4px 6px;
                   background: linear-gradient(transparent, rgba(0,0,0,.85)); font-size: 12px; }
.card .card-text div { color: #fff !important; margin: 0; line-height: 1.3; }
.card .card-name { font-weight: 600; font-size: 13px; word-break: break-all; }
.card .card-details { position: absolute; top: 4px; right: 4px; border-radius: 50%; width: 24px; height: 24px;
                      display: flex; align-items: center; justify-content: center; padding: 0;
                      font: italic bold 15px Georgia, serif; background: rgba(0,0,0,.6); color: #fff !important;
                      border: 1px solid #fff; cursor: pointer; }
.card.other-architecture { opacity: .55; border: 2px dashed #d97706; }
.card .card-text div.card-mark { color: #fbbf24 !important; font-weight: 600; }
.card .card-text div.card-problem { color: #f87171 !important; }
.card:hover { outline: 2px solid var(--color-accent); }
"""


@dataclass(frozen=True)
class ExtraNetworksPanel:
    """The panel's components; ``grids`` holds one card grid per panel tab."""

    accordion: gr.Accordion
    search: gr.Textbox
    refresh: gr.Button
    grids: dict[NetworkTab, gr.HTML]
    details: gr.JSON


class Thumbnails:
    """Preview images as data URIs, re-encoded only when a file changes (one cache per panel)."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[float, str]] = {}

    def uri(self, path: Path) -> str | None:
        from PIL import Image

        try:
            mtime = path.stat().st_mtime
            cached = self._cache.get(path)
            if cached is not None and cached[0] == mtime:
                return cached[1]
            with Image.open(path) as image:
                image = image.convert("RGB")
                image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=85)
        except OSError:  # unreadable or not an image: the card shows no preview
            return None
        uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        self._cache[path] = (mtime, uri)
        return uri


def card_html(card: NetworkCard, thumbnails: Thumbnails, current_label: str) -> str:
    name = html.escape(card.name, quote=True)
    uri = thumbnails.uri(card.preview) if card.preview else None
    picture = f'<img src="{uri}" alt="" loading="lazy">' if uri else \
        f'<div class="no-preview">{html.escape(card.name[:1].upper())}</div>'
    classes = "card other-architecture" if card.other_architecture else "card"
    lines = [f'<div class="card-name">{name}</div>',
             f"<div>{html.escape(card.architecture_label)}{' · ' + card.size if card.size else ''}</div>"]
    if card.other_architecture:
        lines.append(f'<div class="card-mark">for {html.escape(card.architecture_label)}, not '
                     f'{html.escape(current_label)}</div>')
    if card.problem:
        lines.append(f'<div class="card-problem">{html.escape(card.problem)}</div>')
    return (f'<div class="{classes}" data-card="{name}" title="{name}">{picture}'
            f'<button class="card-details" title="Details">i</button>'
            f'<div class="card-text">{"".join(lines)}</div></div>')


def grid_html(ctx: AppContext, tab: NetworkTab, search: str, thumbnails: Thumbnails) -> str:
    """The cards of ``tab`` matching ``search``, or a line saying where such files go."""
    record = ctx.selection.record()
    current = record.architecture if record is not None else None
    cards = build_cards(ctx.store, tab, current, search)
    if not cards:
        folder = ctx.store.registry.folders(tab.model_type)[0]
        what = f"matching {search.strip()!r}" if search.strip() else f"yet: put files in {folder} and press Refresh"
        return f'<p class="no-cards">No {html.escape(tab.label)} {html.escape(what)}.</p>'
    label = current.label if current is not None else "unknown"
    return '<div class="cards">' + "".join(card_html(card, thumbnails, label) for card in cards) + "</div>"


def _tab(value: str) -> NetworkTab:
    try:
        return NetworkTab(value)
    except ValueError:
        raise gr.Error(f"Unknown extra-networks tab {value!r}; one of {[t.value for t in NetworkTab]}.",
                       title="Extra networks") from None


def insert_card(ctx: AppContext, tab: str, name: str, target: str, prompt: str | None,
                negative_prompt: str | None) -> tuple[str, str]:
    """The prompt pair with a LoRA's tag or an embedding's name toggled in the ``target`` box."""
    network_tab = _tab(tab)
    if not network_tab.inserts_text:
        raise gr.Error(f"A {network_tab.label} card selects a model; it writes nothing into the prompt.",
                       title="Extra networks")
    if target not in PROMPT_TARGETS:
        raise gr.Error(f"target must be one of {PROMPT_TARGETS}, got {target!r}.", title="Extra networks")
    try:
        record = find_card_record(ctx.store, network_tab, name)
    except AtelierError as exc:
        raise user_error(exc, title="Extra networks") from exc
    texts = {"prompt": prompt or "", "negative_prompt": negative_prompt or ""}
    texts[target] = toggle_in_prompt(texts[target], network_tab, record.name)
    return texts["prompt"], texts["negative_prompt"]


def details(ctx: AppContext, tab: str, name: str) -> dict[str, Any]:
    """A card's details: file, size, architecture and the ``ss_*`` training metadata."""
    try:
        return card_details(ctx.store, _tab(tab), name)
    except AtelierError as exc:
        raise user_error(exc, title="Extra networks") from exc


def select_handler(ctx: AppContext, bar: CheckpointBar, quick: QuickSettings | None) -> Callable[..., dict]:
    """A checkpoint card loads its model as the checkpoint selector does; a VAE card sets the ``sd_vae``
    option (and shows it in the quick settings' SD VAE selector, when the page has them)."""

    def select_card(tab: str, name: str, progress: gr.Progress = gr.Progress()) -> dict:
        network_tab = _tab(tab)
        if network_tab is NetworkTab.CHECKPOINTS:
            loaded = run_job(lambda report: ctx.selection.select(name, report), progress,
                             error_title="Cannot load model")
            ctx.options.update({"sd_model_checkpoint": loaded.record.title})  # remembered, as the selector does
            return dict(zip((bar.dropdown, bar.status), bar.current(), strict=True))
        if network_tab is NetworkTab.VAE:
            # The option is what every generation reads (and /sdapi/v1/options reports), as with the selector.
            try:
                value = vae_title(find_card_record(ctx.store, network_tab, name))  # A1111 stores the file name
                ctx.options.update({"sd_vae": value})
            except AtelierError as exc:
                raise user_error(exc, title="Cannot set the VAE") from exc
            gr.Info(f"SD VAE: {value}", title="Extra networks")
            return {quick.sd_vae: quick.vae_dropdown(value)} if quick is not None else {}
        raise gr.Error(f"A {network_tab.label} card writes into the prompt; use the insert endpoint.",
                       title="Extra networks")

    return select_card


def build(ctx: AppContext, prefix: str, prompt: gr.Textbox, negative_prompt: gr.Textbox, bar: CheckpointBar,
          quick: QuickSettings | None = None) -> ExtraNetworksPanel:
    """The panel, closed, at the current place in the layout; call it right under the prompt row.
    A VAE card shows its choice in ``quick``'s SD VAE selector."""
    thumbnails = Thumbnails()
    with gr.Accordion("Extra networks", open=False, elem_id=f"{prefix}_extra_networks") as accordion:
        with gr.Row(equal_height=True):
            search = gr.Textbox(label="Search", placeholder="name or folder", scale=6,
                                elem_id=f"{prefix}_extra_networks_search")
            refresh = gr.Button("🔄 Refresh", scale=1, elem_id=f"{prefix}_extra_networks_refresh")
        grids: dict[NetworkTab, gr.HTML] = {}
        with gr.Tabs(elem_id=f"{prefix}_extra_networks_tabs"):
            for tab in NetworkTab:
                with gr.Tab(tab.label, id=f"{prefix}_extra_networks_{tab.value}"):
                    grids[tab] = gr.HTML("", js_on_load=_GRID_JS.replace("PREFIX", prefix),
                                         css_template=_GRID_CSS, elem_id=f"{prefix}_extra_networks_{tab.value}_cards")
        details_box = gr.JSON(label="Details (the i of a card)", elem_id=f"{prefix}_extra_networks_details")
        # Endpoints for API clients; the page itself uses the grids' events.
        card_tab = gr.Textbox(visible=False)
        card_name = gr.Textbox(visible=False)
        card_target = gr.Textbox("prompt", visible=False)
        api_insert = gr.Button(visible=False)
        api_select = gr.Button(visible=False)
        api_details = gr.Button(visible=False)

    grid_list = list(grids.values())

    def render(search: str | None) -> list[str]:
        """Every panel tab's cards whose name or path holds every word of ``search``."""
        return [grid_html(ctx, tab, search or "", thumbnails) for tab in grids]

    def refresh_cards(search: str | None) -> list[str]:
        """Rescan the model folders, then show the cards."""
        ctx.store.refresh()
        return render(search)

    def insert(tab: str, name: str, target: str, prompt: str | None, negative_prompt: str | None) -> tuple[str, str]:
        """Toggle a LoRA's ``<lora:NAME:1>`` or an embedding's name in the prompt (``target``: which box)."""
        return insert_card(ctx, tab, name, target or "prompt", prompt, negative_prompt)

    def show_details(tab: str, name: str) -> dict[str, Any]:
        """A card's file, size, architecture and training metadata."""
        return details(ctx, tab, name)

    select = select_handler(ctx, bar, quick)
    selected = [bar.dropdown, bar.status, *([quick.sd_vae] if quick is not None else [])]
    prompts = {"prompt": prompt, "negative_prompt": negative_prompt}
    search.input(render, search, grid_list, api_name=f"{prefix}_extra_networks_search", trigger_mode="always_last",
                 show_progress="hidden")
    refresh.click(refresh_cards, search, grid_list, api_name=f"{prefix}_extra_networks_refresh")
    accordion.expand(render, search, grid_list, api_name=False, show_progress="hidden")
    api_insert.click(insert, None, [prompt, negative_prompt], api_name=f"{prefix}_extra_networks_insert",
                     inputs_kwargs={"tab": card_tab, "name": card_name, "target": card_target, **prompts})
    api_select.click(select, None, selected, api_name=f"{prefix}_extra_networks_select",
                     inputs_kwargs={"tab": card_tab, "name": card_name}, concurrency_id="gpu", concurrency_limit=1)
    api_details.click(show_details, [card_tab, card_name], details_box, api_name=f"{prefix}_extra_networks_details")
    for tab, grid in grids.items():
        _wire_grid(tab, grid, ctx, select, prompts, selected, details_box)
    return ExtraNetworksPanel(accordion, search, refresh, grids, details_box)


def _wire_grid(tab: NetworkTab, grid: gr.HTML, ctx: AppContext, select: Callable[..., dict],
               prompts: dict[str, gr.Textbox], selected: list[gr.components.Component], details_box: gr.JSON) -> None:
    """A card click inserts (LoRA, embedding) or selects (checkpoint, VAE); its i button shows the details."""
    if tab.inserts_text:
        def clicked(prompt: str | None, negative_prompt: str | None, evt: gr.EventData) -> tuple[str, str]:
            return insert_card(ctx, tab.value, evt.name, evt.box, prompt, negative_prompt)

        grid.click(clicked, list(prompts.values()), list(prompts.values()), api_name=False, show_progress="hidden")
    else:
        def picked(evt: gr.EventData, progress: gr.Progress = gr.Progress()) -> dict:
            return select(tab.value, evt.name, progress)

        grid.click(picked, None, selected, api_name=False, concurrency_id="gpu",
                   concurrency_limit=1)

    def inspect(evt: gr.EventData) -> dict[str, Any]:
        return details(ctx, tab.value, evt.name)

    grid.details(inspect, None, details_box, api_name=False, show_progress="hidden")
