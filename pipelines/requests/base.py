"""The fields every generation request shares, and the checks that name a bad field."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines import samplers
from pipelines.errors import ValidationError
from pipelines.imaging.image_input import MAX_INPUT_PIXELS
from pipelines.imaging.noise import Variation
from pipelines.requests.decoders import check_decoder_fields
from pipelines.requests.hires import HiresFix
from pipelines.requests.limits import check_output_pixels, check_prompt_length
from pipelines.requests.refiner import Refiner

MAX_SEED = 2**32 - 1
EMPHASIS_MODES = ("Original", "No norm", "None")  # A1111's emphasis setting


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
    # how the prompt reaches the model (A1111's settings CLIP_stop_at_last_layers and emphasis)
    clip_skip: int = 1
    emphasis: str = "Original"  # EMPHASIS_MODES
    sd_vae: str = "Automatic"  # A1111's SD VAE setting: Automatic, None (the checkpoint's own) or a VAE's name
    # A1111's "VAE type for decode / encode" (Full | TAESD) and "Live preview method" (pipelines/networks/taesd.py)
    sd_vae_decode_method: str = "Full"
    sd_vae_encode_method: str = "Full"
    show_progress_type: str = "Approx cheap"
    styles: tuple[str, ...] = ()  # names in styles.csv, applied to both prompts before anything else
    # A1111's variation seed (txt2img): noise slerped towards the subseed's; "resize seed from" W x H
    subseed: int = -1
    subseed_strength: float = 0.0
    seed_resize_from_w: int = 0  # 0 (or -1): off
    seed_resize_from_h: int = 0
    # A1111's grid of a batch (options grid_save and n_rows): saved in outputs/<mode>-grids when images are saved
    save_grid: bool = True
    grid_rows: int = -1  # -1: automatic, 0: one row per batch, n: n rows

    mode = ""

    def validate(self) -> None:
        """Raise :class:`ValidationError` naming the first bad field."""
        if not isinstance(self.prompt, str):
            raise ValidationError("prompt", "must be text")
        spec, _ = samplers.resolve(self.sampler_name, self.scheduler)
        if isinstance(self.steps, bool) or not isinstance(self.steps, int):
            raise ValidationError("steps", f"must be a whole number, got {self.steps!r}")
        _check_range("steps", self.steps, 1, spec.max_steps)  # 150; DDPM (pixel-space models only) 1000
        _check_range("cfg_scale", self.cfg_scale, 0, 30)
        _check_size("width", self.width)
        _check_size("height", self.height)
        if not isinstance(self.seed, int) or not -1 <= self.seed <= MAX_SEED:
            raise ValidationError("seed", f"must be -1 (random) or between 0 and {MAX_SEED}, got {self.seed!r}")
        _check_int("batch_size", self.batch_size, 1, 8)
        _check_int("n_iter", self.n_iter, 1, 100)
        if not isinstance(self.negative_prompt, str):
            raise ValidationError("negative_prompt", "must be text")
        check_prompt_length("prompt", self.prompt)
        check_prompt_length("negative_prompt", self.negative_prompt)
        _check_int("clip_skip", self.clip_skip, 1, 12)
        if self.emphasis not in EMPHASIS_MODES:
            raise ValidationError("emphasis", f"must be one of {list(EMPHASIS_MODES)}, got {self.emphasis!r}")
        if not isinstance(self.sd_vae, str) or not self.sd_vae:
            raise ValidationError("sd_vae", f"must be 'Automatic', 'None' or a VAE's name, got {self.sd_vae!r}")
        check_decoder_fields(self)
        self._validate_variation()
        _check_int("grid_rows", self.grid_rows, -1, 16)
        if not isinstance(self.styles, tuple) or not all(isinstance(s, str) for s in self.styles):
            raise ValidationError("styles", f"must be a list of style names, got {self.styles!r}")

    def _validate_variation(self) -> None:
        if not isinstance(self.subseed, int) or not -1 <= self.subseed <= MAX_SEED:
            raise ValidationError("subseed", f"must be -1 (random) or between 0 and {MAX_SEED}, got {self.subseed!r}")
        if isinstance(self.subseed_strength, bool) or not isinstance(self.subseed_strength, int | float):
            raise ValidationError("subseed_strength", f"must be a number, got {self.subseed_strength!r}")
        _check_range("subseed_strength", self.subseed_strength, 0, 1)
        resize = (self.seed_resize_from_w, self.seed_resize_from_h)
        for name, value in zip(("seed_resize_from_w", "seed_resize_from_h"), resize, strict=True):
            _check_int(name, value, -1, 4096)  # 0 or -1: off (A1111 uses the pair only when both are set)
            if value > 0 and value % 8:
                raise ValidationError(name, f"must be a multiple of 8, got {value}")
        if self.variation.active and self.mode != "txt2img":
            raise ValidationError("subseed_strength", f"variation seeds apply to txt2img; {self.mode} draws its noise "
                                  "from the init image (send 0 and no seed resize)")

    def output_size(self) -> tuple[int, int]:
        """The size of each image the job returns."""
        return self.width, self.height

    def check_output_pixels(self) -> None:
        """Refuse up front a job whose images would pass :mod:`pipelines.requests.limits` (call after the fields
        are checked)."""
        field = "n_iter" if self.n_iter > 1 else "batch_size"
        check_output_pixels(field, self.output_size(), self.batch_size * self.n_iter)

    @property
    def variation(self) -> Variation:
        resize = (self.seed_resize_from_w, self.seed_resize_from_h)
        return Variation(self.subseed, float(self.subseed_strength),
                         resize if all(v > 0 for v in resize) and resize != (self.width, self.height) else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Txt2ImgRequest(GenerationRequest):
    """Everything one txt2img job needs; ``hires`` adds A1111's hires fix (a second, upscaled pass), ``refiner``
    its SDXL refiner."""

    hires: HiresFix | None = None
    refiner: Refiner | None = None  # A1111's SDXL refiner: another checkpoint takes over the last steps

    mode = "txt2img"

    def validate(self) -> None:
        super().validate()
        if self.hires is not None:
            if not isinstance(self.hires, HiresFix):
                raise ValidationError("hires", f"must be a HiresFix or None, got {type(self.hires).__name__}")
            self.hires.validate(self)
        if self.refiner is not None:
            if not isinstance(self.refiner, Refiner):
                raise ValidationError("refiner", f"must be a Refiner or None, got {type(self.refiner).__name__}")
            self.refiner.validate()
        self.check_output_pixels()

    def output_size(self) -> tuple[int, int]:
        return self.hires.target_size(self.width, self.height) if self.hires is not None else (self.width, self.height)
