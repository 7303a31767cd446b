"""A1111's prompt styles beside a prompt row: the Styles selection sent with every job, 📋 to write
the selected styles into the prompt boxes, and a small editor for ``styles.csv``.

The core reads, writes and applies the styles (:class:`pipelines.prompts.styles.StyleStore`,
``ctx.styles``); the engine applies the request's ``styles`` to both prompts. This module builds the
inputs (:func:`selector`, :func:`editor`) and wires them (:func:`wire`): every edit refreshes the
choices of every tab's panel, and a freshly loaded page reads the file again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import gradio as gr
from gradio.components import Component

from pipelines.errors import AtelierError
from pipelines.prompts.styles import PromptStyle, StyleStore
from pipelines.requests import GenerationRequest
from webui.errors import user_error

R = TypeVar("R", bound=GenerationRequest)


@dataclass(frozen=True)
class StyleSelector:
    styles: gr.Dropdown  # multiselect; its value is the request's ``styles``
    apply: gr.Button  # 📋: write the selected styles into the prompt boxes


@dataclass(frozen=True)
class StyleEditor:
    name: gr.Dropdown  # pick a style to edit, or type a new name
    style_prompt: gr.Textbox
    style_negative_prompt: gr.Textbox
    save_prompts: gr.Button  # the prompt boxes' text as a new style
    save: gr.Button  # the editor's text as the named style (new or changed)
    delete: gr.Button


@dataclass(frozen=True)
class StylePanel:
    """One tab's styles: ``prefix`` ("txt2img", "img2img") names its events (``{prefix}_style_save`` ...)."""

    prefix: str
    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    selector: StyleSelector
    editor: StyleEditor


def selector(prefix: str, names: list[str]) -> StyleSelector:
    """The Styles multi-select and 📋, at the current place in the layout."""
    # Custom values pass: the list may be older than styles.csv; the engine refuses unknown names.
    styles = gr.Dropdown(names, value=[], multiselect=True, allow_custom_value=True, label="Styles",
                         elem_id=f"{prefix}_styles")
    apply = gr.Button("📋 Apply styles", size="sm", elem_id=f"{prefix}_style_apply")
    return StyleSelector(styles, apply)


def editor(prefix: str, names: list[str]) -> StyleEditor:
    """The closed "Styles editor" accordion, at the current place in the layout."""
    with gr.Accordion("Styles editor", open=False, elem_id=f"{prefix}_style_editor"):
        name = gr.Dropdown(names, value=None, allow_custom_value=True, label="Style",
                           info="Pick a style to edit it, or type a new name", elem_id=f"{prefix}_style_name")
        with gr.Row():
            style_prompt = gr.Textbox("", label="Style prompt", lines=2, placeholder="{prompt} marks where the prompt "
                                      "goes; without it the style is added after the prompt",
                                      elem_id=f"{prefix}_style_prompt")
            style_negative = gr.Textbox("", label="Style negative prompt", lines=2,
                                        elem_id=f"{prefix}_style_negative_prompt")
        with gr.Row():
            save_prompts = gr.Button("Save current prompts as a style", size="sm",
                                     elem_id=f"{prefix}_style_save_prompts")
            save = gr.Button("💾 Save edits", size="sm", elem_id=f"{prefix}_style_save")
            delete = gr.Button("🗑️ Delete", size="sm", variant="stop", elem_id=f"{prefix}_style_delete")
    return StyleEditor(name, style_prompt, style_negative, save_prompts, save, delete)


def styles_from_prompt(store: StyleStore, request: R) -> R:
    """A pasted request with the styles its prompts carry selected and their text taken out of the prompts
    (A1111's default "Apply if any"); when none fit exactly, no style is selected, so the request makes
    the pasted image again."""
    names, prompt, negative = store.extract(request.prompt, request.negative_prompt)
    if names and store.apply(prompt, negative, names) == (request.prompt, request.negative_prompt):
        return replace(request, prompt=prompt, negative_prompt=negative, styles=tuple(names))
    return replace(request, styles=())


def _refreshed(store: StyleStore, panels: Sequence[StylePanel], selected: dict[str, Any]) -> dict[Component, Any]:
    """Every panel's choices read again; selections keep the styles that still exist."""
    names = list(store.all())
    values: dict[Component, Any] = {}
    for panel in panels:
        kept = [name for name in selected.get(f"{panel.prefix}_styles") or [] if name in names]
        values[panel.selector.styles] = gr.Dropdown(choices=names, value=kept)
        values[panel.editor.name] = gr.Dropdown(choices=names)
    return values


def _named(name: str | None) -> str:
    return (name or "").strip()  # styles.csv drops leading spaces; a trailing one would be invisible


def wire(store: StyleStore, panels: Sequence[StylePanel]) -> None:
    """Connect every panel's buttons; call once the page holds all of them."""
    selections = {f"{panel.prefix}_styles": panel.selector.styles for panel in panels}
    shared_outputs = [c for panel in panels for c in (panel.selector.styles, panel.editor.name)]
    for panel in panels:
        _wire_panel(store, panel, panels, selections, shared_outputs)

    def styles_on_load() -> dict[Component, Any]:
        """The choices read from styles.csv again; a page that has just loaded has nothing selected yet."""
        names = list(store.all())
        return {dropdown: gr.Dropdown(choices=names) for dropdown in shared_outputs}

    # Without inputs, gr.on(None) runs on page load only. With the selections as inputs it also ran on their
    # change, and its answer changed them: every open page sent it again every fraction of a second, for good,
    # and Gradio re-reads the inputs (the Inpaint editor's layers too, as PNG uploads) for each event (issue 12).
    gr.on(None, styles_on_load, None, shared_outputs, api_name=False, queue=False, show_progress="hidden")


def _wire_panel(store: StyleStore, panel: StylePanel, panels: Sequence[StylePanel],
                selections: dict[str, Component], shared_outputs: list[Component]) -> None:
    ed, prefix = panel.editor, panel.prefix
    edited = [ed.style_prompt, ed.style_negative_prompt, *shared_outputs]

    def changed(change: Callable[[], Any], name: str, shown: tuple[str, str], selected: dict[str, Any]) -> dict:
        try:
            change()
        except AtelierError as exc:
            raise user_error(exc, title="Styles") from exc
        return {**_refreshed(store, panels, selected), ed.name: gr.Dropdown(choices=list(store.all()), value=name),
                ed.style_prompt: shown[0], ed.style_negative_prompt: shown[1]}

    def apply_styles(prompt: str | None, negative_prompt: str | None, styles: list[str] | None) -> dict:
        """Write the selected styles into the prompt boxes and clear the selection (A1111's Apply styles)."""
        if not styles:
            return {}
        try:
            prompt, negative_prompt = store.apply(prompt or "", negative_prompt or "", styles)
        except AtelierError as exc:
            raise user_error(exc, title="Styles") from exc
        return {panel.prompt: prompt, panel.negative_prompt: negative_prompt, panel.selector.styles: []}

    def style_load(name: str | None) -> tuple[Any, Any]:
        """The named style's prompt and negative prompt, for editing (nothing changes for a new name)."""
        style = store.all().get(_named(name))
        return (style.prompt, style.negative_prompt) if style else (gr.skip(), gr.skip())

    def style_save_prompts(name: str | None, prompt: str | None, negative_prompt: str | None, **selected: Any) -> dict:
        """Save the prompt boxes' text as a new style named ``name``."""
        style = PromptStyle(_named(name), prompt or "", negative_prompt or "")
        return changed(lambda: store.add(style), style.name, (style.prompt, style.negative_prompt), selected)

    def style_save(name: str | None, style_prompt: str | None, style_negative_prompt: str | None,
                   **selected: Any) -> dict:
        """Save the editor's text as style ``name``: a new one, or the existing one changed."""
        style = PromptStyle(_named(name), style_prompt or "", style_negative_prompt or "")
        exists = style.name in store.all()
        save = (lambda: store.update(style.name, style)) if exists else (lambda: store.add(style))
        return changed(save, style.name, (style.prompt, style.negative_prompt), selected)

    def style_delete(name: str | None, **selected: Any) -> dict:
        """Delete style ``name`` from styles.csv."""
        return changed(lambda: store.delete(_named(name)), None, ("", ""), selected)

    sel = panel.selector
    sel.apply.click(apply_styles, None, [panel.prompt, panel.negative_prompt, sel.styles],
                    inputs_kwargs={"prompt": panel.prompt, "negative_prompt": panel.negative_prompt,
                                   "styles": sel.styles}, api_name=f"{prefix}_apply_styles", queue=False)
    ed.name.input(style_load, ed.name, [ed.style_prompt, ed.style_negative_prompt], api_name=f"{prefix}_style_load",
                  queue=False)
    ed.save_prompts.click(style_save_prompts, None, edited, api_name=f"{prefix}_style_save_prompts", queue=False,
                          inputs_kwargs={"name": ed.name, "prompt": panel.prompt,
                                         "negative_prompt": panel.negative_prompt, **selections})
    ed.save.click(style_save, None, edited, api_name=f"{prefix}_style_save", queue=False,
                  inputs_kwargs={"name": ed.name, "style_prompt": ed.style_prompt,
                                 "style_negative_prompt": ed.style_negative_prompt, **selections})
    ed.delete.click(style_delete, None, edited, api_name=f"{prefix}_style_delete", queue=False,
                    inputs_kwargs={"name": ed.name, **selections})
