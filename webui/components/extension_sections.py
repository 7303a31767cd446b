"""Gradio inputs for what extensions declare as data: a :class:`~pipelines.extension_api.Field` becomes a
component, a :class:`~pipelines.extension_api.Section` an accordion in the txt2img / img2img tabs.

Each input is an event keyword named ``ext__<extension>__<field>`` (sections) or
``script__<extension>__<field>`` (scripts), so values travel by name and are regrouped per extension
by :func:`grouped` before they reach the hooks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines.context import AppContext
from pipelines.extension_api import Field

SECTION_PREFIX = "ext"
SCRIPT_PREFIX = "script"


def input_name(prefix: str, extension: str, field: str) -> str:
    """The keyword an input is passed as: a Python identifier (gradio_client names parameters after it)."""
    return "__".join(re.sub(r"\W", "_", part) for part in (prefix, extension, field))


def component(field: Field, elem_id: str) -> Component:
    """The gradio input for one field, showing its default."""
    kw: dict[str, Any] = {"label": field.label, "value": field.default, "elem_id": elem_id}
    if field.kind == "slider":
        return gr.Slider(field.minimum if field.minimum is not None else 0,
                         field.maximum if field.maximum is not None else 100, step=field.step, **kw)
    if field.kind == "number":
        return gr.Number(minimum=field.minimum, maximum=field.maximum, step=field.step or 1, **kw)
    if field.kind == "checkbox":
        return gr.Checkbox(**kw)
    if field.kind == "dropdown":
        return gr.Dropdown(list(field.choices), **kw)
    return gr.Textbox(**kw)


def fields_inputs(prefix: str, extension: str, fields: tuple[Field, ...], mode: str) -> dict[str, Component]:
    out = {}
    for field in fields:
        name = input_name(prefix, extension, field.name)
        out[name] = component(field, f"{mode}_{name}")
    return out


def build_sections(ctx: AppContext, mode: str) -> dict[str, Component]:
    """One closed accordion per extension section that serves ``mode``; returns the inputs by keyword."""
    inputs: dict[str, Component] = {}
    for extension, section in ctx.extensions.sections(mode):
        elem_id = f"{mode}_{input_name(SECTION_PREFIX, extension, 'section')}"
        with gr.Accordion(section.title, open=False, elem_id=elem_id):
            inputs.update(fields_inputs(SECTION_PREFIX, extension, section.fields, mode))
    return inputs


def grouped(prefix: str, values: Mapping[str, Any],
            owners: list[tuple[str, tuple[Field, ...]]]) -> dict[str, dict[str, Any]]:
    """``{extension: {field: value}}`` from the keyword values of ``owners``' fields."""
    out: dict[str, dict[str, Any]] = {}
    for extension, fields in owners:
        for field in fields:
            name = input_name(prefix, extension, field.name)
            if name in values:
                value = values[name]
                if isinstance(value, float) and isinstance(field.default, int) and value.is_integer():
                    value = int(value)  # sliders and numbers send floats
                out.setdefault(extension, {})[field.name] = value
    return out
