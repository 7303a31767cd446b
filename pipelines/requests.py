"""Typed requests, one per generation mode.

Adapters (UI, REST, CLI) build these; :meth:`validate` names the bad field and
value before any model is touched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines import masks, samplers
from pipelines.errors import ValidationError
from pipelines.hires_fix import HiresFix

MAX_SEED = 2**32 - 1
# Input images above Pillow's decompression-bomb threshold are refused (Pillow itself only warns up to
# twice this and refuses beyond); about 9459 x 9459.
MAX_INPUT_PIXELS = 89_478_485


def _check_image(field: str, image: Any) -> None:
    """``image`` is a usable PIL image: not missing, not empty, not huge."""
    if not hasattr(image, "size") or not hasattr(image, "convert"):
        raise ValidationError(field, f"must be an image, got {type(image).__name__}")
    width, height = image.size
    if min(width, height) < 1:
        raise ValidationError(field, f"is empty ({width}x{height})")
    if width * height > MAX_INPUT_PIXELS:
        raise ValidationError(field, f"is too large ({width}x{height}, {width * height / 1e6:.0f} megapixels); "
                              f"the limit is {MAX_INPUT_PIXELS / 1e6:.0f} megapixels")


def _check_range(field: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValidationError(field, f"must be between {low:g} and {high:g}, got {value:g}")


def _check_int(field: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be a whole number, got {value!r}")
    _check_range(field, value, low, high)


def _check_size(field: str, value: int) -> None:
    if not isinstance(value, int):
        raise ValidationError(field, f"must be a whole number of pixels, got {value!r}")
    _check_range(field, value, 64, 4096)
    if value % 8:
        lower = value - value % 8
        raise ValidationError(field, f"must be a multiple of 8, got {value} (try {lower} or {lower + 8})")


@dataclass(frozen=True)
class GenerationRequest:
    """The fields every generation mode shares; field names follow A1111's API."""

    prompt: str = ""
    negative_prompt: str = ""
    sampler_name: str = samplers.DEFAULT_SAMPLER
    scheduler: str = "Automatic"
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    seed: int = -1
    batch_size: int = 1
    n_iter: int = 1
    model: str | None = None  # None: the model selected in the checkpoint bar
    save_images: bool = True

    mode = ""

    def validate(self) -> None:
        """Raise :class:`ValidationError` naming the first bad field."""
        if not isinstance(self.prompt, str):
            raise ValidationError("prompt", "must be text")
        samplers.resolve(self.sampler_name, self.scheduler)
        if not isinstance(self.steps, int):
            raise ValidationError("steps", f"must be a whole number, got {self.steps!r}")
        _check_range("steps", self.steps, 1, 150)
        _check_range("cfg_scale", self.cfg_scale, 0, 30)
        _check_size("width", self.width)
        _check_size("height", self.height)
        if not isinstance(self.seed, int) or not -1 <= self.seed <= MAX_SEED:
            raise ValidationError("seed", f"must be -1 (random) or between 0 and {MAX_SEED}, got {self.seed!r}")
        _check_range("batch_size", self.batch_size, 1, 8)
        _check_range("n_iter", self.n_iter, 1, 100)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Txt2ImgRequest(GenerationRequest):
    """Everything one txt2img job needs; ``hires`` adds A1111's hires fix (a second, upscaled pass)."""

    hires: HiresFix | None = None

    mode = "txt2img"

    def validate(self) -> None:
        super().validate()
        if self.hires is not None:
            if not isinstance(self.hires, HiresFix):
                raise ValidationError("hires", f"must be a HiresFix or None, got {type(self.hires).__name__}")
            self.hires.validate(self)


EXTRAS_RESIZE_MODES = {0: "Scale by", 1: "Scale to"}
MAX_UPSCALED_SIDE = 16384  # pixels; larger results would not fit in memory on most machines
MAX_UPSCALE_FACTOR = 16  # the upscaler registry's limit too


@dataclass(frozen=True)
class ExtrasRequest:
    """A1111's "Extras" upscaling of one image or a batch; field names follow its API."""

    images: tuple[Any, ...] = ()  # PIL images, any mode
    image_names: tuple[str, ...] = ()  # optional, one per image (the batch API's imageList names)
    resize_mode: int = 0  # 0: scale by upscaling_resize, 1: to upscaling_resize_w x upscaling_resize_h
    upscaling_resize: float = 2
    upscaling_resize_w: int = 512
    upscaling_resize_h: int = 512
    upscaling_crop: bool = True  # resize mode 1: crop to exactly w x h (else keep the aspect ratio)
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    extras_upscaler_2_visibility: float = 0
    save_images: bool = True
    model: str | None = None  # unused: extras runs on upscalers, not on the checkpoint

    mode = "extras"

    def validate(self, upscalers: Any = None) -> None:
        """Raise :class:`ValidationError` naming the first bad field; with ``upscalers`` (the
        :class:`~pipelines.upscalers.registry.UpscalerRegistry`) the upscaler names are checked too."""
        if not isinstance(self.images, tuple | list) or not self.images:
            raise ValidationError("images", "at least one image is required")
        for index, image in enumerate(self.images):
            _check_image(f"images.{index}", image)
        if self.image_names and len(self.image_names) != len(self.images):
            raise ValidationError("image_names", f"{len(self.image_names)} names for {len(self.images)} images")
        if self.resize_mode not in EXTRAS_RESIZE_MODES or isinstance(self.resize_mode, bool):
            raise ValidationError("resize_mode", f"must be 0 (scale by) or 1 (scale to), got {self.resize_mode!r}")
        if self.resize_mode == 0:
            self._check_factor()
        else:
            for field in ("upscaling_resize_w", "upscaling_resize_h"):
                value = getattr(self, field)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValidationError(field, f"must be a whole number of pixels, got {value!r}")
                _check_range(field, value, 1, MAX_UPSCALED_SIDE)
        visibility = self.extras_upscaler_2_visibility
        if isinstance(visibility, bool) or not isinstance(visibility, int | float):
            raise ValidationError("extras_upscaler_2_visibility", f"must be a number, got {visibility!r}")
        _check_range("extras_upscaler_2_visibility", visibility, 0, 1)
        for field in ("upscaler_1", "upscaler_2"):
            name = getattr(self, field)
            if not isinstance(name, str):
                raise ValidationError(field, f"must be an upscaler name, got {name!r}")
            if upscalers is not None:
                upscalers.find(name, field=field)

    def _check_factor(self) -> None:
        factor = self.upscaling_resize
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor <= MAX_UPSCALE_FACTOR:
            raise ValidationError("upscaling_resize", f"must be a number above 0 and at most {MAX_UPSCALE_FACTOR}, "
                                  f"got {factor!r}")
        for index, image in enumerate(self.images):
            side = round(max(image.size) * factor)
            if side > MAX_UPSCALED_SIDE:
                raise ValidationError("upscaling_resize", f"{factor:g} would make image {index} {side} px wide or "
                                      f"high; the limit is {MAX_UPSCALED_SIDE}")

    def to_dict(self) -> dict[str, Any]:
        """The fields, with the images summarized rather than copied."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "images"}
        values["images"] = [f"{getattr(i, 'mode', '?')} image of size {getattr(i, 'size', None)}" for i in self.images]
        return values


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

    def validate(self) -> None:
        if self.mask is not None:
            raise ValidationError("mask", "outpainting makes its own mask from the expand_* fields; leave it empty")
        super().validate()
        for side in OUTPAINT_SIDES:
            value = getattr(self, side)
            _check_int(side, value, 0, 4096)
            if value % 8:
                lower = value - value % 8
                raise ValidationError(side, f"must be a multiple of 8, got {value} (try {lower} or {lower + 8})")
        if not any(getattr(self, side) for side in OUTPAINT_SIDES):
            raise ValidationError("expand_left", "expand at least one side (expand_left/right/up/down > 0)")
        width, height = self.canvas_size
        if width > 4096:
            raise ValidationError("expand_right", f"the canvas would be {width} px wide; at most 4096")
        if height > 4096:
            raise ValidationError("expand_down", f"the canvas would be {height} px high; at most 4096")
