"""Typed requests, one per generation mode.

Adapters (UI, REST, CLI) build these; :meth:`validate` names the bad field and
value before any model is touched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines import samplers
from pipelines.errors import ValidationError

MAX_SEED = 2**32 - 1


def _check_range(field: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValidationError(field, f"must be between {low:g} and {high:g}, got {value:g}")


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
    """Everything one txt2img job needs."""

    mode = "txt2img"


RESIZE_MODES = {0: "Just resize", 1: "Crop and resize", 2: "Resize and fill", 3: "Just resize (latent upscale)"}


@dataclass(frozen=True)
class Img2ImgRequest(GenerationRequest):
    """One img2img job: the shared fields plus the image to start from and how far to move away from it."""

    init_image: Any = None  # PIL.Image.Image, any mode; resized to width x height per resize_mode
    denoising_strength: float = 0.75
    resize_mode: int = 0  # RESIZE_MODES

    mode = "img2img"

    @property
    def denoising_steps(self) -> int:
        """The steps that actually run: diffusers skips the first ``steps * (1 - strength)``."""
        return min(int(self.steps * self.denoising_strength), self.steps)

    def validate(self) -> None:
        super().validate()
        if self.init_image is None:
            raise ValidationError("init_image", "an image to start from is required")
        if not hasattr(self.init_image, "size") or not hasattr(self.init_image, "convert"):
            raise ValidationError("init_image", f"must be an image, got {type(self.init_image).__name__}")
        if min(self.init_image.size) < 1:
            raise ValidationError("init_image", f"is empty ({self.init_image.size[0]}x{self.init_image.size[1]})")
        if isinstance(self.denoising_strength, bool) or not isinstance(self.denoising_strength, int | float):
            raise ValidationError("denoising_strength", f"must be a number, got {self.denoising_strength!r}")
        _check_range("denoising_strength", self.denoising_strength, 0, 1)
        if self.denoising_steps < 1:
            raise ValidationError("denoising_strength", f"{self.denoising_strength:g} x {self.steps} steps runs no "
                                  f"denoising step; use at least {1 / self.steps:.3g} or more steps")
        if self.resize_mode not in RESIZE_MODES or isinstance(self.resize_mode, bool):
            raise ValidationError("resize_mode", f"must be 0, 1, 2 or 3, got {self.resize_mode!r}")
        if self.resize_mode == 3:
            raise ValidationError("resize_mode", "3 (latent upscale) is not available yet; use 0, 1 or 2")

    def to_dict(self) -> dict[str, Any]:
        """The fields, with the image summarized rather than copied."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "init_image"}
        image = self.init_image
        size = getattr(image, "size", None)
        values["init_image"] = None if image is None else f"{getattr(image, 'mode', '?')} image of size {size}"
        return values
