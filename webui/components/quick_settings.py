"""A1111's quick settings beside the checkpoint selector: Clip skip, Emphasis and SD VAE.

They are options (``CLIP_stop_at_last_layers``, ``emphasis`` and ``sd_vae`` in ``config.json``), shared by
every browser tab and the REST API as in A1111: a change is saved at once, a freshly loaded page
shows the saved values, and every generation reads them (:func:`webui.jobs.generation`). Pasting
an infotext sets them to the image's values (:meth:`QuickSettings.paste`; the SD VAE only when the
image names an installed one), so the image can be made again. The checkpoint bar's refresh button
also refreshes the SD VAE list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines.errors import ValidationError
from pipelines.networks.vae import AUTOMATIC
from pipelines.options import OptionsStore
from pipelines.requests import EMPHASIS_MODES, GenerationRequest
from webui.errors import user_error

CLIP_SKIP_OPTION = "CLIP_stop_at_last_layers"
EMPHASIS_OPTION = "emphasis"
VAE_OPTION = "sd_vae"
QUICK_NAMES = ("clip_skip", "emphasis", "sd_vae")  # the components' names: request fields, and event keywords


@dataclass(frozen=True)
class QuickSettings:
    """The inputs; their values are the options, not part of any form."""

    clip_skip: gr.Slider
    emphasis: gr.Dropdown
    sd_vae: gr.Dropdown
    options: OptionsStore
    vae_choices: Callable[[], list[str]]  # Automatic, None, then every VAE's name (pipelines.networks.vae)

    def components(self) -> list[Component]:
        """In :data:`QUICK_NAMES` order (outputs of paste events, and of the page load)."""
        return [self.clip_skip, self.emphasis, self.sd_vae]

    def current(self) -> tuple[int, str, Any]:
        """The saved values (and the VAE list), for a freshly loaded page."""
        settings = self.options.prompt_settings()
        return settings["clip_skip"], settings["emphasis"], self.vae_dropdown()

    def vae_dropdown(self, value: str | None = None) -> gr.Dropdown:
        """The SD VAE choices as the registry lists them now, showing ``value`` (the saved option when None)."""
        return gr.Dropdown(choices=self.vae_choices(), value=value or self.options.sd_vae())

    def paste(self, request: GenerationRequest) -> dict[Component, Any]:
        """Save the pasted request's Clip skip, Emphasis and (when it names one) SD VAE as the options and show them."""
        save(self.options, CLIP_SKIP_OPTION, request.clip_skip)
        save(self.options, EMPHASIS_OPTION, request.emphasis)
        shown: dict[Component, Any] = {self.clip_skip: request.clip_skip, self.emphasis: request.emphasis}
        for key in ("sd_vae_decode_method", "sd_vae_encode_method"):  # VAE Decoder / Encoder: TAESD (or Full)
            save(self.options, key, getattr(request, key))
        if request.sd_vae != AUTOMATIC:  # an infotext names a VAE only when one was used (A1111 keeps the setting)
            save(self.options, VAE_OPTION, request.sd_vae)
            shown[self.sd_vae] = self.vae_dropdown(request.sd_vae)
        return shown


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


def build(options: OptionsStore, vae_choices: Callable[[], list[str]], refreshed: Any = None) -> QuickSettings:
    """The inputs, at the current place in the layout (the checkpoint bar's row), wired to save on change;
    ``refreshed`` (the checkpoint bar's refresh event) also updates the SD VAE list."""
    current = options.prompt_settings()
    quick = QuickSettings(
        gr.Slider(1, 12, value=current["clip_skip"], step=1, label="Clip skip", scale=2, min_width=160,
                  info="Stop at the last N text-encoder layers (SD1/SD2)", elem_id="quick_clip_skip"),
        gr.Dropdown(list(EMPHASIS_MODES), value=current["emphasis"], label="Emphasis", scale=1, min_width=120,
                    info="How (word:1.2) weights apply", elem_id="quick_emphasis"),
        # custom values pass to the options, which refuse a name that matches no VAE: a VAE added through the
        # API (or another page's refresh) is usable before this page's list is refreshed
        gr.Dropdown(vae_choices(), value=options.sd_vae(), label="SD VAE", scale=2, min_width=160,
                    allow_custom_value=True, elem_id="quick_sd_vae",
                    info="Automatic: NAME.vae.safetensors beside the checkpoint, else its own"),
        options,
        vae_choices,
    )

    def set_clip_skip(clip_skip: float | None) -> None:
        """Save Clip skip (1-12: stop at the last N text-encoder layers) for every later generation."""
        save(options, CLIP_SKIP_OPTION, clip_skip)

    def set_emphasis(emphasis: str | None) -> None:
        """Save Emphasis (Original / No norm / None) for every later generation."""
        save(options, EMPHASIS_OPTION, emphasis)

    def set_sd_vae(sd_vae: str | None) -> None:
        """Save the SD VAE (Automatic / None / a file in models/VAE) for every later generation."""
        save(options, VAE_OPTION, sd_vae)

    def refresh_vaes() -> gr.Dropdown:
        """The SD VAE list after a rescan (the checkpoint bar's refresh rescans every kind of model)."""
        return quick.vae_dropdown()

    # .change also follows what a paste or the page load shows; save() skips values already saved.
    for component, fn in ((quick.clip_skip, set_clip_skip), (quick.emphasis, set_emphasis),
                          (quick.sd_vae, set_sd_vae)):
        component.change(fn, component, None, api_name=fn.__name__, queue=False, show_progress="hidden",
                         trigger_mode="always_last")
    if refreshed is not None:
        refreshed.then(refresh_vaes, None, [quick.sd_vae], api_name="refresh_vaes", queue=False,
                       show_progress="hidden")
    return quick
