"""What extensions add to the page besides the generation tabs: their own tabs, and their settings in the
Settings tab (kept in config.json through the options store, like A1111's extension options)."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines.context import AppContext
from pipelines.extension_api import Option
from webui.errors import user_error

log = logging.getLogger(__name__)


def build_tabs(ctx: AppContext) -> None:
    """One tab per :class:`~pipelines.extension_api.Tab`; a tab whose ``build()`` fails shows the error instead."""
    for extension, tab in ctx.extensions.tabs():
        with gr.Tab(tab.title, id=f"extension_{extension}_{tab.title}"):
            try:
                tab.build()
            except Exception as exc:  # the page still builds; the tab says which extension broke it
                log.exception("extension %s: tab %r failed to build", extension, tab.title)
                gr.Markdown(f"**Extension `{extension}` could not build this tab:** `{type(exc).__name__}: {exc}`")


def _input(option: Option, value: Any) -> Component:
    if option.choices:
        return gr.Dropdown(list(option.choices), value=value, label=option.label)
    if isinstance(option.default, bool):
        return gr.Checkbox(value=bool(value), label=option.label)
    if isinstance(option.default, int | float):
        return gr.Number(value=value, label=option.label, precision=0 if isinstance(option.default, int) else None)
    return gr.Textbox(value=str(value), label=option.label)


def build_options(ctx: AppContext) -> None:
    """The extensions' settings with a Save button (event ``save_extension_options``, values by key)."""
    options = ctx.extensions.options()
    if not options:
        return
    current = ctx.options.values()
    inputs: dict[str, Component] = {}
    with gr.Accordion("Extensions' settings", open=True, elem_id="settings_extension_options"):
        for extension, option in options:
            inputs[option.key] = _input(option, current.get(option.key, option.default))
            inputs[option.key].info = f"{extension} · {option.key}"
        save = gr.Button("Save extension settings", elem_id="settings_extension_options_save")

    def save_extension_options(**values: Any) -> None:
        """Store the extensions' settings in config.json."""
        typed = {}
        for _, option in options:
            value = values.get(option.key, option.default)
            if isinstance(option.default, int) and not isinstance(option.default, bool) and value is not None:
                value = int(value)
            typed[option.key] = value
        try:
            ctx.options.update(typed)
        except Exception as exc:
            raise user_error(exc, title="Cannot save") from exc
        gr.Info(f"Saved {len(typed)} extension setting(s).")

    save.click(save_extension_options, None, None, inputs_kwargs=inputs, api_name="save_extension_options")
