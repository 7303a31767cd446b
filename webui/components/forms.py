"""Pieces every generation tab shares: forms as dataclasses of named components, and the prompt row."""

from __future__ import annotations

from dataclasses import dataclass, fields

import gradio as gr
from gradio.components import Component

from webui.components import style_panel, token_counter
from webui.components.style_panel import StylePanel
from webui.components.token_counter import TokenizerCache


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
    styles: StylePanel  # the Styles selection (its value is the request's ``styles``) and the styles editor
    prompt_tokens: gr.HTML  # the token counters under the boxes ("N/75")
    negative_prompt_tokens: gr.HTML

    def wire_counters(self, tokenizers: TokenizerCache, *, steps: gr.Slider, emphasis: gr.Dropdown,
                      checkpoint: gr.Dropdown) -> None:
        """Count the tokens of both boxes as they change (events ``{prefix}_prompt_tokens`` and
        ``{prefix}_negative_prompt_tokens``, not listed in the API docs)."""
        for name, box, display in (("prompt", self.prompt, self.prompt_tokens),
                                   ("negative_prompt", self.negative_prompt, self.negative_prompt_tokens)):
            token_counter.wire(tokenizers, box, display, steps=steps, emphasis=emphasis, checkpoint=checkpoint,
                               api_name=f"{self.styles.prefix}_{name}_tokens")


def prompt_row(prefix: str, placeholder: str, style_names: list[str]) -> PromptRow:
    """Prompt and negative prompt (each with its token counter, then the styles editor) on the left;
    Generate, Interrupt, Skip and the Styles selection on the right (A1111's layout).
    Element ids are ``{prefix}_prompt``, ``{prefix}_generate``, ``{prefix}_prompt_token_counter`` and so on."""
    with gr.Row():
        with gr.Column(scale=5):
            prompt_tokens = token_counter.counter(f"{prefix}_prompt_token_counter")
            prompt = gr.Textbox("", label="Prompt", lines=3, placeholder=placeholder, elem_id=f"{prefix}_prompt")
            negative_tokens = token_counter.counter(f"{prefix}_negative_prompt_token_counter")
            negative_prompt = gr.Textbox("", label="Negative prompt", lines=2,
                                         elem_id=f"{prefix}_negative_prompt")
            editor = style_panel.editor(prefix, style_names)
        with gr.Column(scale=1, min_width=160) as side:
            generate = gr.Button("Generate", variant="primary", elem_id=f"{prefix}_generate")
            with gr.Row():
                interrupt = gr.Button("Interrupt", elem_id=f"{prefix}_interrupt", min_width=60)
                skip = gr.Button("Skip", elem_id=f"{prefix}_skip", min_width=60)
            selector = style_panel.selector(prefix, style_names)
    styles = StylePanel(prefix, prompt, negative_prompt, selector, editor)
    return PromptRow(prompt, negative_prompt, generate, interrupt, skip, side, styles, prompt_tokens, negative_tokens)
