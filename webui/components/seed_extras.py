"""A1111's seed "Extra": Variation seed (🎲 / ♻️), Variation strength and Resize seed from width / height.

The checkbox beside Seed shows them. As in A1111 they only count while it is ticked: unticked, the
request gets no variation (``subseed_strength`` 0, no seed resize) whatever the hidden fields hold.
Their names are the request fields (``subseed``, ``subseed_strength``, ``seed_resize_from_w``,
``seed_resize_from_h``) plus ``seed_extra`` for the checkbox; pasting an infotext that names a
variation seed or a seed resize ticks it (A1111's paste does the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.components import Component

from pipelines.infotext.codec import parse_infotext
from pipelines.requests.base import MAX_SEED, GenerationRequest

SEED_EXTRA_NAMES = ("seed_extra", "subseed", "subseed_strength", "seed_resize_from_w", "seed_resize_from_h")


@dataclass(frozen=True)
class SeedExtras:
    """The checkbox and the fields it shows, in :data:`SEED_EXTRA_NAMES` order."""

    seed_extra: gr.Checkbox
    subseed: gr.Number
    subseed_strength: gr.Slider
    seed_resize_from_w: gr.Slider
    seed_resize_from_h: gr.Slider
    random_subseed: gr.Button
    reuse_subseed: gr.Button

    def components(self) -> list[Component]:
        return [getattr(self, name) for name in SEED_EXTRA_NAMES]

    def wire_reuse(self, info: gr.Textbox) -> None:
        """♻️ takes the variation seed of the last image (its infotext in ``info``), as A1111's does."""
        self.reuse_subseed.click(last_variation_seed, info, self.subseed, queue=False, api_name=False)


def checkbox(prefix: str) -> gr.Checkbox:
    """The "Extra" checkbox; put it in the Seed row."""
    return gr.Checkbox(False, label="Extra", scale=1, min_width=60, elem_id=f"{prefix}_seed_extra")


def build(prefix: str, seed_extra: gr.Checkbox) -> SeedExtras:
    """The variation fields, hidden until ``seed_extra`` is ticked; put them under the Seed row."""
    with gr.Group(visible=False, elem_id=f"{prefix}_seed_extras") as group:
        with gr.Row(equal_height=True):
            subseed = gr.Number(value=-1, label="Variation seed", precision=0, minimum=-1, maximum=MAX_SEED, scale=4,
                                elem_id=f"{prefix}_subseed")
            random_subseed = gr.Button("🎲", scale=0, min_width=40, elem_id=f"{prefix}_random_subseed")
            reuse_subseed = gr.Button("♻️", scale=0, min_width=40, elem_id=f"{prefix}_reuse_subseed")
            subseed_strength = gr.Slider(0, 1, value=0, step=0.01, label="Variation strength", scale=4,
                                         elem_id=f"{prefix}_subseed_strength")
        with gr.Row():
            seed_resize_from_w = gr.Slider(0, 2048, value=0, step=8, label="Resize seed from width (0: off)",
                                           elem_id=f"{prefix}_seed_resize_from_w")
            seed_resize_from_h = gr.Slider(0, 2048, value=0, step=8, label="Resize seed from height (0: off)",
                                           elem_id=f"{prefix}_seed_resize_from_h")
    seed_extra.change(lambda ticked: gr.Group(visible=bool(ticked)), seed_extra, group, queue=False, api_name=False)
    random_subseed.click(lambda: -1, None, subseed, queue=False, api_name=False)
    return SeedExtras(seed_extra, subseed, subseed_strength, seed_resize_from_w, seed_resize_from_h, random_subseed,
                      reuse_subseed)


def variation_fields(*, seed_extra: bool = False, subseed: float | None = -1, subseed_strength: float = 0,
                     seed_resize_from_w: float = 0, seed_resize_from_h: float = 0) -> dict[str, Any]:
    """The request fields the seed extras set: none while "Extra" is unticked (A1111 ignores them then)."""
    if not seed_extra:
        return {}
    return dict(subseed=int(subseed if subseed is not None else -1), subseed_strength=float(subseed_strength),
                seed_resize_from_w=int(seed_resize_from_w), seed_resize_from_h=int(seed_resize_from_h))


def extra_values(request: GenerationRequest) -> dict[str, Any]:
    """The seed extras showing ``request``: ticked when it uses a variation seed or a seed resize."""
    resize = (request.seed_resize_from_w, request.seed_resize_from_h)
    return dict(seed_extra=request.subseed_strength > 0 or all(v > 0 for v in resize), subseed=request.subseed,
                subseed_strength=request.subseed_strength, seed_resize_from_w=max(0, resize[0]),
                seed_resize_from_h=max(0, resize[1]))


def last_variation_seed(info: str | None) -> Any:
    """The ``Variation seed`` of the last image's infotext (a warning when it used none)."""
    value = parse_infotext(info or "").get("Variation seed", "").strip()
    if not value.isdigit():
        gr.Warning("The last image used no variation seed.", title="No variation seed")
        return gr.skip()
    return int(value)
