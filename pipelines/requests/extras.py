"""A1111's "Extras": upscaling one image or a batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.errors import ValidationError
from pipelines.requests.base import _check_image, _check_range
from pipelines.requests.limits import check_output_pixels

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
        self._check_output_pixels()
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

    def scale_for(self, size: tuple[int, int]) -> float:
        """The factor an image of ``size`` is upscaled by: the one asked for, or (resize mode 1) the one that
        covers w x h (the image is then cropped to w x h when ``upscaling_crop``)."""
        if self.resize_mode == 0:
            return float(self.upscaling_resize)
        return max(self.upscaling_resize_w / size[0], self.upscaling_resize_h / size[1])

    def _check_output_pixels(self) -> None:
        """Each upscaled image (before any crop, as it is held in memory) and all of them within the limits."""
        field = "upscaling_resize" if self.resize_mode == 0 else "upscaling_resize_w"
        total = 0
        for image in self.images:
            scale = self.scale_for(image.size)
            size = (round(image.size[0] * scale), round(image.size[1] * scale))
            total = check_output_pixels(field, size, total_before=total)

    def to_dict(self) -> dict[str, Any]:
        """The fields, with the images summarized rather than copied."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "images"}
        values["images"] = [f"{getattr(i, 'mode', '?')} image of size {getattr(i, 'size', None)}" for i in self.images]
        return values
