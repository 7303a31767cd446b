"""The img2img tab's shared form: named components and the request their values describe.

The inputs every sub-tab shares (prompt, sampler, size, denoising strength, ...) live in
:class:`Img2ImgForm`; each sub-tab adds its own image input (and the Inpaint / Outpaint
sub-tabs their own settings, see :mod:`webui.tabs.inpaint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
from gradio.components import Component
from PIL import Image

from pipelines.actions import image_size_for_request
from pipelines.imaging.image_input import read_image_file
from pipelines.requests import RESIZE_MODES, Img2ImgRequest
from webui.components.forms import NamedForm

# (label, value) pairs: the radio's value is the request's int, its label A1111's text.
RESIZE_CHOICES = [(label, mode) for mode, label in RESIZE_MODES.items()]


@dataclass(frozen=True)
class Img2ImgForm(NamedForm):
    """The shared inputs, named like :class:`Img2ImgRequest` fields; the checkpoint is the bar's."""

    checkpoint: gr.Dropdown
    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    sampler_name: gr.Dropdown
    scheduler: gr.Dropdown
    steps: gr.Slider
    resize_mode: gr.Radio
    width: gr.Slider
    height: gr.Slider
    n_iter: gr.Slider
    batch_size: gr.Slider
    cfg_scale: gr.Slider
    denoising_strength: gr.Slider
    seed: gr.Number
    styles: gr.Dropdown  # the prompt row's Styles selection

    def show(self, request: Img2ImgRequest) -> dict[Component, Any]:
        """A value for every component, taken from ``request`` (its model into the checkpoint bar)."""
        values = {getattr(self, name): getattr(request, name) for name in self.named()
                  if name not in ("checkpoint", "styles")}
        values[self.styles] = list(request.styles)
        return {self.checkpoint: request.model, **values} if request.model else values


def shared_fields(*, checkpoint: str | None, prompt: str | None, negative_prompt: str | None, sampler_name: str,
                  scheduler: str, steps: float, resize_mode: float, width: float, height: float, n_iter: float,
                  batch_size: float, cfg_scale: float, denoising_strength: float, seed: float | None,
                  styles: list[str] | None = None) -> dict[str, Any]:
    """The form's values as request keyword arguments (not validated yet)."""
    return dict(
        prompt=prompt or "", negative_prompt=negative_prompt or "", sampler_name=sampler_name, scheduler=scheduler,
        steps=int(steps), resize_mode=int(resize_mode), width=int(width), height=int(height), n_iter=int(n_iter),
        batch_size=int(batch_size), cfg_scale=float(cfg_scale), denoising_strength=float(denoising_strength),
        seed=int(seed if seed is not None else -1), model=checkpoint or None, styles=tuple(styles or ()),
    )


def request_from_form(*, init_image: Any, **form_values: Any) -> Img2ImgRequest:
    """The plain img2img request the form describes (not validated yet)."""
    return Img2ImgRequest(init_image=init_image, **shared_fields(**form_values))


def read_upload(value: Any, field: str) -> Any:
    """An image input's value as a PIL image: a file path (an upload) read fully by the core, which refuses a
    truncated or unreadable file naming ``field``; an image (a pasted infotext's, a test's) as it is."""
    if isinstance(value, str | Path):
        return read_image_file(value, field)
    return value


def size_of(image: Any) -> tuple[Any, Any]:
    """Width and height for a newly uploaded image (a path or an image): its own size in multiples of 8
    (nothing when cleared or unreadable; Generate then says why)."""
    if isinstance(image, str | Path):
        try:
            with Image.open(image) as opened:  # the header only
                image = SimpleNamespace(size=opened.size)
        except (OSError, ValueError, Image.DecompressionBombError):
            return gr.skip(), gr.skip()
    if image is None or not hasattr(image, "size"):
        return gr.skip(), gr.skip()
    width, height = image_size_for_request(image)
    return min(width, 2048), min(height, 2048)
