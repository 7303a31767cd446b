"""The Outpaint sub-tab of img2img: an image, how far to extend it on each side, and how the new
area is painted; plus the :class:`OutpaintRequest` its values describe."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines.errors import ValidationError
from pipelines.requests import Img2ImgRequest, OutpaintRequest
from webui.components.forms import NamedForm
from webui.tabs.img2img_form import read_upload
from webui.tabs.inpaint import MASKED_CONTENT_CHOICES

EXPAND_MAX = 1024  # px per side in the form (the core takes up to a 4096 px canvas)
SIDES = {"expand_left": "Expand left (px)", "expand_right": "Expand right (px)",
         "expand_up": "Expand up (px)", "expand_down": "Expand down (px)"}


@dataclass(frozen=True)
class OutpaintInputs(NamedForm):
    """The Outpaint sub-tab's inputs; ``expand_*`` are named like :class:`OutpaintRequest` fields."""

    outpaint_image: gr.Image
    expand_left: gr.Slider
    expand_right: gr.Slider
    expand_up: gr.Slider
    expand_down: gr.Slider
    outpaint_mask_blur: gr.Slider  # -> mask_blur
    outpaint_inpainting_fill: gr.Radio  # -> inpainting_fill


    def show(self, request: Img2ImgRequest) -> dict[Component, Any]:
        """The request's image and, for an :class:`OutpaintRequest`, its expansion."""
        values: dict[Component, Any] = {self.outpaint_image: request.init_image,
                                        self.outpaint_mask_blur: request.mask_blur,
                                        self.outpaint_inpainting_fill: request.inpainting_fill}
        if isinstance(request, OutpaintRequest):
            values.update({getattr(self, side): getattr(request, side) for side in SIDES})
        return values


def build_inputs() -> OutpaintInputs:
    """The sub-tab's components, in the current Blocks context."""
    defaults = OutpaintRequest()
    # a file path: outpaint_request has the core read it fully (a truncated upload is refused)
    image = gr.Image(label="Image to extend", type="filepath", sources=["upload", "clipboard"], image_mode=None,
                     height=360, elem_id="outpaint_image")
    with gr.Row():
        left, right = (gr.Slider(0, EXPAND_MAX, value=0, step=8, label=SIDES[side], elem_id=f"outpaint_{side}")
                       for side in ("expand_left", "expand_right"))
    with gr.Row():
        up, down = (gr.Slider(0, EXPAND_MAX, value=0, step=8, label=SIDES[side], elem_id=f"outpaint_{side}")
                    for side in ("expand_up", "expand_down"))
    gr.Markdown("The new area starts from the image's edge colours; a denoising strength of 0.8 or more "
                "lets the model paint something new there.")
    mask_blur = gr.Slider(0, 64, value=defaults.mask_blur, step=1, label="Mask blur", elem_id="outpaint_mask_blur")
    fill = gr.Radio(MASKED_CONTENT_CHOICES, value=defaults.inpainting_fill, label="Masked content",
                    elem_id="outpaint_masked_content")
    return OutpaintInputs(image, left, right, up, down, mask_blur, fill)


def outpaint_request(base: Img2ImgRequest, *, outpaint_image: Any, expand_left: float, expand_right: float,
                     expand_up: float, expand_down: float, outpaint_mask_blur: float,
                     outpaint_inpainting_fill: float) -> OutpaintRequest:
    """``base`` (the shared fields) as an outpainting of ``outpaint_image``; ``gr.Error`` when something is
    missing. The size checks are the core's."""
    if outpaint_image is None:
        raise gr.Error("Upload or paste an image into the Outpaint sub-tab first.", title="No image")
    expand = dict(expand_left=int(expand_left), expand_right=int(expand_right), expand_up=int(expand_up),
                  expand_down=int(expand_down))
    if not any(expand.values()):
        raise gr.Error("Set at least one of Expand left / right / up / down above 0.", title="Nothing to extend")
    values = {f.name: getattr(base, f.name) for f in fields(base)}
    try:
        image = read_upload(outpaint_image, "outpaint_image")
    except ValidationError as exc:
        raise gr.Error(str(exc), title="Cannot generate") from exc
    values.update(init_image=image, mask_blur=int(outpaint_mask_blur),
                  inpainting_fill=int(outpaint_inpainting_fill))
    return OutpaintRequest(**values, **expand)
