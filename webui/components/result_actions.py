"""One-click actions under a result gallery (Midjourney's Vary/Upscale, A1111's send-to buttons).

Every action works on the gallery's *selected* image (the first one until the user
clicks another). Gallery items are the saved PNG files, so the image arrives with
its infotext and an action can remake it with its own prompt and settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from pipelines.actions import VARY_DENOISING_STRENGTH, image_infotext, seed_of, vary_request
from pipelines.context import AppContext
from pipelines.modes.variation import noise_level_range, variation_available, vary_by_embedding, vary_model
from webui.components.gallery import first_infotext, gallery_items
from webui.errors import user_error
from webui.jobs import generation, run_job
from webui.owners import page_owner
from webui.queueing import device_events

LABELS = {
    "vary_subtle": "Vary (subtle)",
    "vary_strong": "Vary (strong)",
    "vary_embedding": "Variation (image embedding)",  # shown when an image-variation model is installed
    "upscale": "⬆ Upscale (2x)",
    "send_img2img": "Send to img2img",
    "send_inpaint": "Send to inpaint",
    "send_extras": "Send to extras",
    "reuse_seed": "♻️ Reuse seed",
}


@dataclass(frozen=True)
class ResultActions:
    """A row of action buttons bound to one gallery; ``selected`` holds the selected item's index."""

    source: str  # the tab the gallery belongs to: "txt2img", "img2img", "extras"
    gallery: gr.Gallery
    selected: gr.State
    buttons: dict[str, gr.Button]


@contextmanager
def inside(block: gr.blocks.Block) -> Iterator[None]:
    """Re-enter the layout that holds ``block`` to add components at its end.

    The layouts are entered outermost first, each from its own parent, exactly as when
    the page was built; call it at the top level of the page's ``with gr.Blocks()``.
    """
    chain = []
    node = block.parent
    while node is not None and not isinstance(node, gr.Blocks):
        chain.append(node)
        node = node.parent
    with ExitStack() as stack:
        for layout in reversed(chain):
            stack.enter_context(layout)
        yield


def add_row(gallery: gr.Gallery, source: str, actions: tuple[str, ...]) -> ResultActions:
    """Put the buttons at the end of the gallery's column and track which image is selected."""
    selected = gr.State(0)
    with inside(gallery), gr.Row(elem_id=f"{source}_result_actions"):
        buttons = {name: gr.Button(LABELS[name], size="sm", min_width=80, elem_id=f"{source}_action_{name}")
                   for name in actions}

    def select_image(evt: gr.SelectData) -> int:
        return evt.index if isinstance(evt.index, int) else 0

    gallery.select(select_image, None, selected, api_name=False, queue=False)
    gallery.change(lambda: 0, None, selected, api_name=False, queue=False)  # new results: the first image again
    return ResultActions(source, gallery, selected, buttons)


def selected_path(items: list[tuple[str, str | None]] | None, index: int | None) -> str:
    """The file of the selected gallery item (the first when the index is stale)."""
    if not items:
        raise gr.Error("There is no image here yet: generate one first.", title="No image")
    return items[index if isinstance(index, int) and 0 <= index < len(items) else 0][0]


def read_image(path: str) -> tuple[Image.Image, str]:
    """The image file's pixels and its infotext (PNG chunk, EXIF, other tools' metadata)."""
    try:
        with Image.open(path) as opened:
            return opened.copy(), image_infotext(opened)  # copy() reads the pixels and keeps ``info``
    except (OSError, ValueError) as exc:
        raise gr.Error(f"The image cannot be read ({exc})", title="No image") from exc


def vary_handler(ctx: AppContext, strength: str) -> Callable[..., tuple[list, str]]:
    """Vary (subtle/strong): img2img of the selected image with its own settings and a new seed."""
    if strength not in VARY_DENOISING_STRENGTH:
        raise ValueError(f"unknown Vary strength {strength!r}")

    def vary(items: list | None, index: int, progress: gr.Progress = gr.Progress(),
             request: gr.Request | None = None) -> tuple[list, str]:
        image, infotext = read_image(selected_path(items, index))
        try:
            job = vary_request(image, strength, infotext=infotext, store=ctx.store)
            job.validate()
        except Exception as exc:
            raise user_error(exc, title="Cannot vary") from exc
        result = run_job(generation(ctx, job, owner=page_owner(request)), progress, error_title="Cannot vary")
        return gallery_items(result), first_infotext(result)

    vary.__name__ = f"vary_{strength}"
    vary.__doc__ = (f"Vary ({strength}): img2img of the selected image at denoising strength "
                    f"{VARY_DENOISING_STRENGTH[strength]:g} with a new random seed.")
    return vary


def vary_embedding_handler(ctx: AppContext) -> Callable[..., tuple[list, str]]:
    """Variation (image embedding): new pictures from the selected image's CLIP embedding (DALL·E 2's idea)."""

    def vary_embedding(items: list | None, index: int, noise_level: float | None = None,
                       progress: gr.Progress = gr.Progress(), request: gr.Request | None = None) -> tuple[list, str]:
        """Variations of the selected image drawn from its CLIP image embedding, with its settings and a new seed
        (a Stable unCLIP model: at ``noise_level``, the slider beside the button)."""
        image, infotext = read_image(selected_path(items, index))
        try:
            unclip = noise_level_range(vary_model(ctx.store)) is not None
            job = vary_by_embedding(image, infotext, ctx.store,
                                    noise_level=int(noise_level or 0) if unclip else None)
            job.validate()
        except Exception as exc:
            raise user_error(exc, title="Cannot vary") from exc
        result = run_job(generation(ctx, job, owner=page_owner(request)), progress, error_title="Cannot vary")
        return gallery_items(result), first_infotext(result)

    return vary_embedding


def reuse_seed(items: list | None, index: int) -> Any:
    """The selected image's seed, for the seed field of the tab it came from."""
    seed = seed_of(read_image(selected_path(items, index))[1])
    if seed is None:
        gr.Warning("The selected image does not say which seed made it.", title="No seed")
        return gr.skip()
    return seed


def wire_vary_and_seed(ctx: AppContext, row: ResultActions, info: gr.Textbox, seed: gr.Number | None) -> None:
    """Vary results go back into the same gallery (and info box); Reuse seed into the tab's seed field."""
    for strength in ("subtle", "strong"):
        button = row.buttons.get(f"vary_{strength}")
        if button is not None:
            button.click(vary_handler(ctx, strength), [row.gallery, row.selected], [row.gallery, info],
                         api_name=f"{row.source}_vary_{strength}", **device_events(ctx))
    if "vary_embedding" in row.buttons:
        row.buttons["vary_embedding"].visible = variation_available(ctx.store)
        top = noise_level_range(vary_model(ctx.store))  # a Stable unCLIP model: its noise level beside the button
        with inside(row.buttons["vary_embedding"]):
            noise = gr.Slider(0, top or 999, value=0, step=1, label="Noise level", visible=top is not None,
                              min_width=160, elem_id=f"{row.source}_vary_embedding_noise_level")
        row.buttons["vary_embedding"].click(vary_embedding_handler(ctx), [row.gallery, row.selected, noise],
                                            [row.gallery, info], api_name=f"{row.source}_vary_embedding",
                                            **device_events(ctx))
    if seed is not None and "reuse_seed" in row.buttons:
        row.buttons["reuse_seed"].click(reuse_seed, [row.gallery, row.selected], seed,
                                        api_name=f"{row.source}_reuse_seed", queue=False)
