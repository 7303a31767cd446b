"""A line under the checkpoint selector: what the selected model is made for.

Turbo / LCM / Lightning / Hyper models get their step, CFG and sampler suggestion
(:mod:`pipelines.models.families`); a single file whose prediction (epsilon or v) was decided says how
(:mod:`pipelines.models.prediction`). Ordinary models get an empty line.
"""

from __future__ import annotations

import gradio as gr

from pipelines.context import AppContext
from pipelines.errors import AtelierError
from pipelines.modes.unconditional import suggested_settings


def hint_text(ctx: AppContext, checkpoint: str | None) -> str:
    """Markdown for ``checkpoint`` (a name, title or Hub repo id); never raises."""
    if not checkpoint:
        return ""
    try:
        record = ctx.store.resolve(checkpoint)
    except AtelierError:
        return ""
    loaded = ctx.store.loaded(record)
    record = loaded.record if loaded is not None else record  # the loaded one knows its probed prediction
    parts = []
    if (suggested := suggested_settings(record)) is not None:
        parts.append(f"🎲 Unconditional pixel-space model: no prompt (the prompt boxes are off); it draws images at "
                     f"its own size; sampler DDPM ({suggested[1]} steps) or DDIM (fewer, e.g. 50)")
    if (hint := record.family_hint) is not None:
        parts.append(f"💡 {hint.text}")
    if record.prediction is not None:
        parts.append(f"Predicts {record.prediction.describe()}")
    return " · ".join(parts)


def build(ctx: AppContext, dropdown: gr.Dropdown, status: gr.Markdown) -> gr.Markdown:
    """The hint line, refreshed when the selection changes and again once the model is loaded."""
    hint = gr.Markdown(lambda: hint_text(ctx, ctx.selection.current), elem_id="model_hint")

    def show(checkpoint: str | None) -> str:
        return hint_text(ctx, checkpoint)

    dropdown.change(show, [dropdown], [hint], api_name="checkpoint_hint", queue=False)
    status.change(show, [dropdown], [hint], api_name=False, queue=False)
    return hint
