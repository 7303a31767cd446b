"""img2img, inpaint and outpaint requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.errors import ValidationError
from pipelines.imaging import masks
from pipelines.requests.base import GenerationRequest, _check_image, _check_int, _check_range

RESIZE_MODES = {0: "Just resize", 1: "Crop and resize", 2: "Resize and fill", 3: "Just resize (latent upscale)"}
INPAINTING_FILL = {0: "fill", 1: "original", 2: "latent noise", 3: "latent nothing"}  # A1111's "Masked content"
MASK_MODES = {0: "Inpaint masked", 1: "Inpaint not masked"}  # inpainting_mask_invert


@dataclass(frozen=True)
class Img2ImgRequest(GenerationRequest):
    """One img2img job: the shared fields plus the image to start from and how far to move away from it."""

    init_image: Any = None  # PIL.Image.Image, any mode; resized to width x height per resize_mode
    denoising_strength: float = 0.75
    resize_mode: int = 0  # RESIZE_MODES
    # inpainting (A1111's field names); the mask is resized with the image
    mask: Any = None  # PIL.Image.Image or None; white (>= 128) = repaint, or the alpha of a transparent RGBA
    mask_blur: int = 4  # Gaussian blur radius of the mask's edge, px
    inpainting_fill: int = 1  # INPAINTING_FILL ("Masked content")
    inpaint_full_res: bool = False  # True: "Only masked" (repaint a crop around the mask at width x height)
    inpaint_full_res_padding: int = 32  # px around the mask's box in "Only masked"
    inpainting_mask_invert: int = 0  # MASK_MODES; 1 repaints what the mask leaves black

    mode = "img2img"

    @property
    def denoising_steps(self) -> int:
        """The steps that actually run: diffusers skips the first ``steps * (1 - strength)``."""
        return min(int(self.steps * self.denoising_strength), self.steps)

    def validate(self) -> None:
        super().validate()
        if self.init_image is None:
            raise ValidationError("init_image", "an image to start from is required")
        _check_image("init_image", self.init_image)
        if isinstance(self.denoising_strength, bool) or not isinstance(self.denoising_strength, int | float):
            raise ValidationError("denoising_strength", f"must be a number, got {self.denoising_strength!r}")
        _check_range("denoising_strength", self.denoising_strength, 0, 1)
        if self.denoising_steps < 1:
            raise ValidationError("denoising_strength", f"{self.denoising_strength:g} x {self.steps} steps runs no "
                                  f"denoising step; use at least {1 / self.steps:.3g} or more steps")
        if self.resize_mode not in RESIZE_MODES or isinstance(self.resize_mode, bool):
            raise ValidationError("resize_mode", f"must be 0, 1, 2 or 3, got {self.resize_mode!r}")
        if self.resize_mode == 3 and self.mask is not None:
            raise ValidationError("resize_mode", "3 (latent upscale) works without a mask; for inpainting use "
                                  "0, 1 or 2")
        if self.mask is not None:
            self._validate_inpainting()
        self.check_output_pixels()

    def _validate_inpainting(self) -> None:
        _check_int("mask_blur", self.mask_blur, 0, 64)
        if self.inpainting_fill not in INPAINTING_FILL or isinstance(self.inpainting_fill, bool):
            raise ValidationError("inpainting_fill", f"must be 0 (fill), 1 (original), 2 (latent noise) or "
                                  f"3 (latent nothing), got {self.inpainting_fill!r}")
        if not isinstance(self.inpaint_full_res, bool):
            raise ValidationError("inpaint_full_res", f"must be true or false, got {self.inpaint_full_res!r}")
        _check_int("inpaint_full_res_padding", self.inpaint_full_res_padding, 0, 256)
        if self.inpainting_mask_invert not in MASK_MODES or isinstance(self.inpainting_mask_invert, bool):
            raise ValidationError("inpainting_mask_invert", f"must be 0 or 1, got {self.inpainting_mask_invert!r}")
        _check_image("mask", self.mask)
        masks.check_mask(self.mask, self.init_image.size, invert=bool(self.inpainting_mask_invert))

    def to_dict(self) -> dict[str, Any]:
        """The fields, with the image summarized rather than copied."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__}
        for field in ("init_image", "mask"):
            image = values[field]
            size = getattr(image, "size", None)
            values[field] = None if image is None else f"{getattr(image, 'mode', '?')} image of size {size}"
        return values


OUTPAINT_SIDES = ("expand_left", "expand_right", "expand_up", "expand_down")


@dataclass(frozen=True)
class OutpaintRequest(Img2ImgRequest):
    """Outpainting: the init image (resized to width x height by resize_mode) extended by the given
    pixels on each side, and the new area inpainted; the result is the extended canvas. The mask is
    made from the expansion (``mask`` stays None); the other inpainting fields apply to it."""

    expand_left: int = 0
    expand_right: int = 0
    expand_up: int = 0
    expand_down: int = 0

    mode = "outpaint"

    @property
    def canvas_size(self) -> tuple[int, int]:
        return (self.width + self.expand_left + self.expand_right, self.height + self.expand_up + self.expand_down)

    def output_size(self) -> tuple[int, int]:
        return self.canvas_size

    def validate(self) -> None:
        if self.mask is not None:
            raise ValidationError("mask", "outpainting makes its own mask from the expand_* fields; leave it empty")
        for side in OUTPAINT_SIDES:  # before the shared fields: their check counts the canvas's pixels
            value = getattr(self, side)
            _check_int(side, value, 0, 4096)
            if value % 8:
                lower = value - value % 8
                raise ValidationError(side, f"must be a multiple of 8, got {value} (try {lower} or {lower + 8})")
        super().validate()
        if not any(getattr(self, side) for side in OUTPAINT_SIDES):
            raise ValidationError("expand_left", "expand at least one side (expand_left/right/up/down > 0)")
        width, height = self.canvas_size
        if width > 4096:
            raise ValidationError("expand_right", f"the canvas would be {width} px wide; at most 4096")
        if height > 4096:
            raise ValidationError("expand_down", f"the canvas would be {height} px high; at most 4096")
