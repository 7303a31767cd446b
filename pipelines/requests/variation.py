"""Image variations from an image embedding (DALL·E 2's idea): a picture in, new pictures of the same content out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.errors import ValidationError
from pipelines.requests.base import GenerationRequest, _check_image


@dataclass(frozen=True)
class ImageVariationRequest(GenerationRequest):
    """``image`` is encoded by the variation model's CLIP image encoder and the UNet draws from that embedding;
    ``variation_model`` names an installed image-variation model (None: the first one). The prompt is not used."""

    image: Any = None
    variation_model: str | None = None

    mode = "variation"

    def validate(self) -> None:
        super().validate()
        _check_image("image", self.image)
        if self.variation_model is not None and (not isinstance(self.variation_model, str)
                                                 or not self.variation_model.strip()):
            raise ValidationError("variation_model", f"must be a model's name or null, got {self.variation_model!r}")
        self.check_output_pixels()
