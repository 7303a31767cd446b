"""A1111's quick settings beside the checkpoint selector: Clip skip and Emphasis.

They are options (``CLIP_stop_at_last_layers`` and ``emphasis`` in ``config.json``), shared by
every browser tab and the REST API as in A1111: a change is saved at once, a freshly loaded page
shows the saved values, and every generation reads them (:func:`webui.jobs.generation`). Pasting
an infotext sets them to the image's values (:meth:`QuickSettings.paste`), so the image can be
made again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines.errors import ValidationError
from pipelines.options import OptionsStore
from pipelines.requests import EMPHASIS_MODES, GenerationRequest
from webui.errors import user_error

CLIP_SKIP_OPTION = "CLIP_stop_at_last_layers"
EMPHASIS_OPTION = "emphasis"
QUICK_NAMES = ("clip_skip", "emphasis")  # the components' names: request fields, and event keywords


@dataclass(frozen=True)
class QuickSettings:
    """The two inputs; their values are the options, not part of any form."""

    clip_skip: gr.Slider
    emphasis: gr.Dropdown
    options: OptionsStore

    def components(self) -> list[Component]:
        """In :data:`QUICK_NAMES` order (outputs of paste events, and of the page load)."""
        return [self.clip_skip, self.emphasis]

    def current(self) -> tuple[int, str]:
        """The saved values, for a freshly loaded page."""
        settings = self.options.prompt_settings()
        return settings["clip_skip"], settings["emphasis"]

    def paste(self, request: GenerationRequest) -> dict[Component, Any]:
        """Save the pasted request's Clip skip and Emphasis as the options and show them."""
        save(self.options, CLIP_SKIP_OPTION, request.clip_skip)
        save(self.options, EMPHASIS_OPTION, request.emphasis)
        return {self.clip_skip: request.clip_skip, self.emphasis: request.emphasis}


def save(options: OptionsStore, key: str, value: Any) -> None:
    """Write one option (config.json) unless it already holds ``value``; each setting is saved on its
    own, so a page showing an old value of the other one never writes it back."""
    if value is None:  # a number box being retyped
        return
    try:
        value = int(value) if key == CLIP_SKIP_OPTION else value
        if options.values().get(key) != value:
            options.update({key: value})
    except ValidationError as exc:
        raise user_error(exc, title="Cannot change the setting") from exc


def build(options: OptionsStore) -> QuickSettings:
    """The inputs, at the current place in the layout (the checkpoint bar's row), wired to save on change."""
    current = options.prompt_settings()
    quick = QuickSettings(
        gr.Slider(1, 12, value=current["clip_skip"], step=1, label="Clip skip", scale=2, min_width=160,
                  info="Stop at the last N text-encoder layers (SD1/SD2)", elem_id="quick_clip_skip"),
        gr.Dropdown(list(EMPHASIS_MODES), value=current["emphasis"], label="Emphasis", scale=1, min_width=120,
                    info="How (word:1.2) weights apply", elem_id="quick_emphasis"),
        options,
    )

    def set_clip_skip(clip_skip: float | None) -> None:
        """Save Clip skip (1-12: stop at the last N text-encoder layers) for every later generation."""
        save(options, CLIP_SKIP_OPTION, clip_skip)

    def set_emphasis(emphasis: str | None) -> None:
        """Save Emphasis (Original / No norm / None) for every later generation."""
        save(options, EMPHASIS_OPTION, emphasis)

    # .change also follows what a paste or the page load shows; save() skips values already saved.
    for component, fn in ((quick.clip_skip, set_clip_skip), (quick.emphasis, set_emphasis)):
        component.change(fn, component, None, api_name=fn.__name__, queue=False, show_progress="hidden",
                         trigger_mode="always_last")
    return quick
