"""Cross-tab wiring: the result actions under each gallery and PNG Info's send-to buttons.

Tabs build themselves and return what others need; this module connects them, so
``app.py`` stays a list of tabs. Every event switches tabs through the page's
``gr.Tabs`` (ids "txt2img", "img2img", "extras", "png_info", ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipelines.context import AppContext
from webui.components import result_actions
from webui.tabs.txt2img import Txt2ImgForm


@dataclass(frozen=True)
class Pages:
    """The page's tab switcher and the tabs the actions connect."""

    tabs: gr.Tabs
    txt2img: Txt2ImgForm
    txt2img_gallery: gr.Gallery
    txt2img_info: gr.Textbox


def component(demo: gr.Blocks, elem_id: str) -> Any:
    """The page's component with ``elem_id`` (for tabs that do not return it)."""
    for block in demo.blocks.values():
        if getattr(block, "elem_id", None) == elem_id:
            return block
    raise LookupError(f"no component with elem_id {elem_id!r} on the page")


TXT2IMG_ACTIONS = ("vary_subtle", "vary_strong", "reuse_seed")


def wire(ctx: AppContext, pages: Pages) -> dict[str, result_actions.ResultActions]:
    """Add the action rows under the result galleries and connect them; call at the page's top level."""
    txt2img = result_actions.add_row(pages.txt2img_gallery, "txt2img", TXT2IMG_ACTIONS)
    result_actions.wire_vary_and_seed(ctx, txt2img, pages.txt2img_info, pages.txt2img.seed)
    return {"txt2img": txt2img}
