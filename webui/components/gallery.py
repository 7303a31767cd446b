"""The result side of a generation tab: the output gallery, and the live preview and info box beside it.

Every tab that shows generated images builds its gallery with :func:`output_gallery`, so they
all look and behave alike (PNG files, two columns, download and fullscreen, no upload box).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.progress import ProgressUpdate
from pipelines.results import GeneratedImage, GenerationResult


def output_gallery(elem_id: str, *, label: str = "Output") -> gr.Gallery:
    """A gallery of saved images: output only, served as the PNG files (infotext included)."""
    return gr.Gallery(label=label, format="png", columns=2, interactive=False, elem_id=elem_id,
                      buttons=["download", "fullscreen"])


def seed_caption(image: GeneratedImage) -> str:
    return f"Seed {image.seed}"


def size_caption(image: GeneratedImage) -> str:
    return f"{image.image.width}x{image.image.height}"


def gallery_items(result: GenerationResult, caption: Callable[[GeneratedImage], str] = seed_caption
                  ) -> list[tuple[Any, str]]:
    """The gallery's value: each saved file (the image itself when it was not saved) with its caption."""
    return [(str(img.path) if img.path else img.image, caption(img)) for img in result.images]


def first_infotext(result: GenerationResult) -> str:
    return result.images[0].infotext if result.images else ""


@dataclass(frozen=True)
class ResultPanel:
    """A generation tab's results: the live preview (shown while a job runs), the gallery and the info.

    A streaming event's outputs are ``[preview, gallery, info, last_seed]``: :meth:`preview_update`
    and :meth:`final_update` give the values.
    """

    preview: gr.Image
    gallery: gr.Gallery
    info: gr.Textbox

    @staticmethod
    def preview_update(update: ProgressUpdate) -> tuple[Any, ...] | None:
        """The update's preview image, shown (None when it has none)."""
        if update.preview is None:
            return None
        return gr.Image(value=update.preview, visible=True), gr.skip(), gr.skip(), gr.skip()

    @staticmethod
    def final_update(result: GenerationResult) -> tuple[Any, ...]:
        """The preview hidden, the saved images, the first one's infotext and seed (-1 without images); the
        result's notices (a lower-memory retry, say) shown as warnings."""
        for notice in result.notices:
            gr.Warning(notice, title="Note")
        return (gr.Image(visible=False), gallery_items(result), first_infotext(result),
                result.images[0].seed if result.images else -1)


def result_panel(prefix: str) -> ResultPanel:
    """The preview, gallery and info box, with element ids ``{prefix}_preview`` and so on."""
    preview = gr.Image(label="Live preview", visible=False, interactive=False, elem_id=f"{prefix}_preview")
    gallery = output_gallery(f"{prefix}_gallery")
    info = gr.Textbox(label="Generation info", lines=4, interactive=False, elem_id=f"{prefix}_info")
    return ResultPanel(preview, gallery, info)
