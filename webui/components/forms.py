"""Pieces every generation tab shares: forms as dataclasses of named components, and the prompt row."""

from __future__ import annotations

from dataclasses import dataclass, fields

import gradio as gr
from gradio.components import Component


class NamedForm:
    """Mixin for a dataclass whose fields are components named like request fields."""

    def named(self) -> dict[str, Component]:
        """Field name -> component, for an event's ``inputs_kwargs``; a field that is itself a form
        (an accordion's inputs, say) adds its own names in its place."""
        named: dict[str, Component] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            named.update(value.named() if isinstance(value, NamedForm) else {f.name: value})
        return named

    def components(self) -> list[Component]:
        return list(self.named().values())


@dataclass(frozen=True)
class PromptRow:
    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    generate: gr.Button
    interrupt: gr.Button
    skip: gr.Button
    side: gr.Column  # the buttons' column, for tab-specific extras (e.g. txt2img's ↙ Read parameters)


def prompt_row(prefix: str, placeholder: str) -> PromptRow:
    """Prompt and negative prompt on the left; Generate, Interrupt and Skip on the right (A1111's layout).
    Element ids are ``{prefix}_prompt``, ``{prefix}_generate`` and so on."""
    with gr.Row():
        with gr.Column(scale=5):
            prompt = gr.Textbox("", label="Prompt", lines=3, placeholder=placeholder, elem_id=f"{prefix}_prompt")
            negative_prompt = gr.Textbox("", label="Negative prompt", lines=2,
                                         elem_id=f"{prefix}_negative_prompt")
        with gr.Column(scale=1, min_width=160) as side:
            generate = gr.Button("Generate", variant="primary", elem_id=f"{prefix}_generate")
            with gr.Row():
                interrupt = gr.Button("Interrupt", elem_id=f"{prefix}_interrupt", min_width=60)
                skip = gr.Button("Skip", elem_id=f"{prefix}_skip", min_width=60)
    return PromptRow(prompt, negative_prompt, generate, interrupt, skip, side)
