"""Image variations from an image embedding (DALL·E 2's idea): a picture in, new pictures of the same content out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.errors import ValidationError
from pipelines.requests.base import GenerationRequest, _check_image


@dataclass(frozen=True)
class ImageVariationRequest(GenerationRequest):
    """``image`` is encoded by the variation model's CLIP image encoder and the UNet draws from that embedding;
    ``variation_model`` names an installed image-variation model (None: the first one). The prompt is used by
    Stable unCLIP models only. ``noise_level`` (unCLIP only, diffusers' meaning): how much noise is added to the
    image embedding before the UNet sees it, 0 to the model's noising steps - 1 (0: none; more: looser variations)."""

    image: Any = None
    variation_model: str | None = None
    noise_level: int = 0

    mode = "variation"

    def validate(self) -> None:
        super().validate()
        _check_image("image", self.image)
        if self.variation_model is not None and (not isinstance(self.variation_model, str)
                                                 or not self.variation_model.strip()):
            raise ValidationError("variation_model", f"must be a model's name or null, got {self.variation_model!r}")
        if isinstance(self.noise_level, bool) or not isinstance(self.noise_level, int) or self.noise_level < 0:
            raise ValidationError("noise_level", f"must be a whole number from 0 (the model's noising steps set the "
                                  f"top), got {self.noise_level!r}")
        self.check_output_pixels()
