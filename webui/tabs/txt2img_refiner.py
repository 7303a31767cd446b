"""The txt2img tab's "Refiner" accordion (A1111 1.6+'s layout): enable, checkpoint, switch at.

Its inputs are named like A1111's API fields (``refiner_checkpoint``, ``refiner_switch_at``) plus
``enable_refiner``; :func:`refiner_from_values` turns them into the request's
:class:`~pipelines.requests.Refiner` and :func:`refiner_values` back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.context import AppContext
from pipelines.models.architecture import Architecture
from pipelines.requests.refiner import DEFAULT_SWITCH_AT, Refiner
from webui.components.forms import NamedForm

REFINER_INPUT_NAMES = ("enable_refiner", "refiner_checkpoint", "refiner_switch_at")


def refiner_choices(ctx: AppContext) -> list[str]:
    """The installed checkpoints that can refine an SDXL job: SDXL refiners first, then SDXL checkpoints."""
    usable = [r for r in ctx.store.checkpoints() if r.installed and not r.problem and r.kind is not None
              and r.kind.architecture is Architecture.SDXL and not r.kind.inpainting]
    return [r.name for r in sorted(usable, key=lambda r: (not r.kind.refiner, r.name.lower()))]


@dataclass(frozen=True)
class RefinerInputs(NamedForm):
    enable_refiner: gr.Checkbox
    refiner_checkpoint: gr.Dropdown
    refiner_switch_at: gr.Slider


def refiner_from_values(*, enable_refiner: bool = False, refiner_checkpoint: str | None = None,
                        refiner_switch_at: float = DEFAULT_SWITCH_AT) -> Refiner | None:
    """The accordion's values as the request's refiner (None when off); a missing checkpoint is the request's
    to refuse, naming ``refiner_checkpoint``."""
    if not enable_refiner:
        return None
    return Refiner(refiner_checkpoint or "", float(refiner_switch_at))


def refiner_values(refiner: Refiner | None, kept: Refiner | None = None) -> dict[str, Any]:
    """Input name -> value showing ``refiner``; when it is None, the accordion keeps ``kept``'s values unticked."""
    shown = refiner or kept
    return {"enable_refiner": refiner is not None,
            "refiner_checkpoint": shown.checkpoint if shown is not None else "",
            "refiner_switch_at": shown.switch_at if shown is not None else DEFAULT_SWITCH_AT}


def build(ctx: AppContext) -> RefinerInputs:
    """The accordion, closed and off; the checkpoint list is refreshed on page load."""
    with gr.Accordion("Refiner", open=False, elem_id="txt2img_refiner"):
        with gr.Row():
            enable = gr.Checkbox(False, label="Refiner", elem_id="txt2img_enable_refiner", scale=1)
            # "" first (A1111's empty choice): the input always has a value, so API clients may leave it out
            checkpoint = gr.Dropdown(["", *refiner_choices(ctx)], value="", label="Checkpoint", scale=3,
                                     elem_id="txt2img_refiner_checkpoint",
                                     info="an SDXL refiner or SDXL checkpoint; it takes over the last steps")
            switch_at = gr.Slider(0.01, 1, value=DEFAULT_SWITCH_AT, step=0.01, label="Switch at", scale=2,
                                  elem_id="txt2img_refiner_switch_at",
                                  info="fraction of the steps after which the refiner takes over")
    refresh: Any = lambda: gr.Dropdown(choices=["", *refiner_choices(ctx)])  # noqa: E731
    gr.on(None, refresh, None, checkpoint, api_name=False)
    return RefinerInputs(enable, checkpoint, switch_at)


def checked_paste(ctx: AppContext, refiner: Refiner | None, notes: list[str]) -> Refiner | None:
    """A pasted refiner the dropdown can show, else None (with a note)."""
    if refiner is None or refiner.checkpoint in refiner_choices(ctx):
        return refiner
    notes.append(f"Refiner {refiner.checkpoint!r} is not an installed SDXL checkpoint; the refiner is left off.")
    return None

