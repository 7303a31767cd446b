"""The Inpaint sub-tab of img2img: an image editor to paint the mask on, an optional mask upload,
and A1111's inpaint settings; plus the request its values describe."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import numpy as np
from gradio.components import Component
from PIL import Image

from pipelines.imaging import masks
from pipelines.requests import INPAINTING_FILL, MASK_MODES, Img2ImgRequest
from webui.components.forms import NamedForm

MASK_MODE_CHOICES = [(label, value) for value, label in MASK_MODES.items()]
MASKED_CONTENT_CHOICES = [(label, value) for value, label in INPAINTING_FILL.items()]
INPAINT_AREA_CHOICES = [("Whole picture", 0), ("Only masked", 1)]  # inpaint_full_res False / True
BRUSH_COLORS = ["rgb(255, 255, 255)", "rgb(0, 0, 0)", "rgb(204, 50, 50)"]  # the colour is only for the eye


@dataclass(frozen=True)
class InpaintInputs(NamedForm):
    """The Inpaint sub-tab's inputs; the settings are named like :class:`Img2ImgRequest` fields."""

    inpaint_editor: gr.ImageEditor
    inpaint_mask: gr.Image
    mask_blur: gr.Slider
    inpainting_mask_invert: gr.Radio
    inpainting_fill: gr.Radio
    inpaint_full_res: gr.Radio
    inpaint_full_res_padding: gr.Slider

    def show(self, request: Img2ImgRequest) -> dict[Component, Any]:
        """The request's image in the editor (no mask painted yet) and its inpaint settings."""
        return {self.inpaint_editor: request.init_image, self.inpaint_mask: request.mask,
                self.mask_blur: request.mask_blur, self.inpainting_mask_invert: request.inpainting_mask_invert,
                self.inpainting_fill: request.inpainting_fill, self.inpaint_full_res: int(request.inpaint_full_res),
                self.inpaint_full_res_padding: request.inpaint_full_res_padding}


def build_inputs() -> InpaintInputs:
    """The sub-tab's components, in the current Blocks context."""
    defaults = Img2ImgRequest()
    editor = gr.ImageEditor(label="Image: paint over what to repaint", type="pil", image_mode="RGBA",
                            sources=["upload", "clipboard"], layers=False, transforms=(), height=420,
                            brush=gr.Brush(colors=BRUSH_COLORS, color_mode="fixed"), elem_id="inpaint_editor")
    with gr.Accordion("Inpaint upload: a mask image instead of (or as well as) painting", open=False):
        mask = gr.Image(label="Mask (white = repaint)", type="pil", image_mode=None,
                        sources=["upload", "clipboard"], height=240, elem_id="inpaint_mask")
    mask_blur = gr.Slider(0, 64, value=defaults.mask_blur, step=1, label="Mask blur", elem_id="inpaint_mask_blur")
    invert = gr.Radio(MASK_MODE_CHOICES, value=defaults.inpainting_mask_invert, label="Mask mode",
                      elem_id="inpaint_mask_mode")
    fill = gr.Radio(MASKED_CONTENT_CHOICES, value=defaults.inpainting_fill, label="Masked content",
                    elem_id="inpaint_masked_content")
    with gr.Row():
        full_res = gr.Radio(INPAINT_AREA_CHOICES, value=int(defaults.inpaint_full_res), label="Inpaint area",
                            elem_id="inpaint_area")
        padding = gr.Slider(0, 256, value=defaults.inpaint_full_res_padding, step=4,
                            label="Only masked padding, pixels", elem_id="inpaint_padding")
    return InpaintInputs(editor, mask, mask_blur, invert, fill, full_res, padding)


def painted_mask(layers: list[Any], size: tuple[int, int]) -> Image.Image | None:
    """White wherever any editor layer has paint (any non-transparent pixel); None if nothing is painted."""
    painted = None
    for layer in layers:
        if layer is None:
            continue
        alpha = np.asarray(layer.convert("RGBA").getchannel("A").resize(size, Image.Resampling.NEAREST)) > 0
        painted = alpha if painted is None else painted | alpha
    if painted is None or not painted.any():
        return None
    return Image.fromarray(np.where(painted, 255, 0).astype(np.uint8), mode="L")


def combined_mask(painted: Image.Image | None, uploaded: Any, size: tuple[int, int]) -> Image.Image | None:
    """The painted strokes and the uploaded mask together (either may be missing)."""
    if uploaded is None:
        return painted
    upload = masks.to_mask(uploaded).resize(size, Image.Resampling.NEAREST)
    if painted is None:
        return upload
    return Image.fromarray(np.maximum(np.asarray(painted), np.asarray(upload)), mode="L")


def inpaint_request(base: Img2ImgRequest, *, inpaint_editor: dict | None, inpaint_mask: Any, mask_blur: float,
                    inpainting_mask_invert: float, inpainting_fill: float, inpaint_full_res: float,
                    inpaint_full_res_padding: float) -> Img2ImgRequest:
    """``base`` (the shared fields) inpainting the editor's image under its painted or uploaded mask.

    Raises ``gr.Error`` when there is no image or no mask at all; the mask's other checks are the core's.
    """
    background = (inpaint_editor or {}).get("background")
    if background is None:
        raise gr.Error("Upload or paste an image into the Inpaint editor first.", title="No image")
    mask = combined_mask(painted_mask(inpaint_editor.get("layers") or [], background.size), inpaint_mask,
                         background.size)
    if mask is None:
        raise gr.Error("Paint over the area to repaint with the brush, or upload a mask under 'Inpaint upload'.",
                       title="No mask")
    return replace(base, init_image=background, mask=mask, mask_blur=int(mask_blur),
                   inpainting_mask_invert=int(inpainting_mask_invert), inpainting_fill=int(inpainting_fill),
                   inpaint_full_res=bool(inpaint_full_res), inpaint_full_res_padding=int(inpaint_full_res_padding))
