"""Hires fix settings (A1111's two-pass txt2img): what the second pass does and at which size.

Field names are A1111's API names (``hr_scale``, ``hr_upscaler``, ...), and :meth:`HiresFix.validate`
names them in its errors, so the REST API reports the field a client sent and the UI the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pipelines import samplers
from pipelines.errors import ValidationError
from pipelines.requests.limits import check_prompt_length


class FirstPass(Protocol):
    """What hires fix reads of the first pass's request (any generation request has these)."""

    prompt: str
    negative_prompt: str
    sampler_name: str
    scheduler: str
    width: int
    height: int

SAME_SAMPLER = "Use same sampler"  # A1111's UI and infotext label for "as the first pass"
SAME_SCHEDULER = "Use same scheduler"
MAX_SIDE = 4096
LATENT_CELL = 8  # pixels per latent cell: hires sizes are rounded down to a multiple of this


def _same(value: str | None, label: str) -> str | None:
    """None for "as the first pass" (None, "", or A1111's "Use same ..." label), else the name."""
    return None if value in (None, "", label) else value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(field: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationError(field, f"must be a whole number from {low} to {high}, got {value!r}")


@dataclass(frozen=True)
class HiresFix:
    """The second pass of a txt2img job: upscale the first pass, then img2img it at the new size."""

    hr_scale: float = 2.0  # used when hr_resize_x and hr_resize_y are both 0
    hr_upscaler: str = "Latent"  # a latent upscale mode or an upscaler name
    hr_second_pass_steps: int = 0  # denoising steps of the second pass; 0: the request's steps
    hr_resize_x: int = 0  # target width; 0 with hr_resize_y set: keep the aspect ratio
    hr_resize_y: int = 0
    denoising_strength: float = 0.7
    hr_sampler_name: str | None = None  # None: the first pass's sampler
    hr_scheduler: str | None = None  # None: the first pass's schedule type
    hr_prompt: str = ""  # "": the first pass's prompt
    hr_negative_prompt: str = ""

    @property
    def uses_resize(self) -> bool:
        return bool(self.hr_resize_x or self.hr_resize_y)

    def upscale_size(self, width: int, height: int) -> tuple[int, int]:
        """The size the first pass is upscaled to, before cropping (A1111's ``hr_upscale_to_x/y``).

        Both resize sides given with another aspect ratio than the first pass: the image is scaled
        to cover the target and :meth:`target_size` is cut from its centre. Rounded down to 8.
        """
        x, y = self.hr_resize_x, self.hr_resize_y
        if not self.uses_resize:
            size = (int(width * self.hr_scale), int(height * self.hr_scale))
        elif y == 0 or (x and width / height < x / y):
            size = (x, x * height // width)
        else:
            size = (y * width // height, y)
        return size[0] // LATENT_CELL * LATENT_CELL, size[1] // LATENT_CELL * LATENT_CELL

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """The final image size, each side rounded down to a multiple of 8."""
        cover = self.upscale_size(width, height)
        if self.hr_resize_x and self.hr_resize_y:
            return (self.hr_resize_x // LATENT_CELL * LATENT_CELL, self.hr_resize_y // LATENT_CELL * LATENT_CELL)
        return cover

    def steps(self, first_pass_steps: int) -> int:
        """Denoising steps the second pass runs."""
        return self.hr_second_pass_steps or first_pass_steps

    def sampler_name(self, first: FirstPass) -> str:
        return _same(self.hr_sampler_name, SAME_SAMPLER) or first.sampler_name

    def scheduler(self, first: FirstPass) -> str:
        return _same(self.hr_scheduler, SAME_SCHEDULER) or first.scheduler

    def prompts(self, first: FirstPass) -> tuple[str, str]:
        return self.hr_prompt or first.prompt, self.hr_negative_prompt or first.negative_prompt

    def infotext_params(self, first: FirstPass) -> dict[str, object]:
        """A1111's hires infotext keys, in its order; optional ones are None unless they differ from the first pass."""
        params: dict[str, object] = {}
        if self.uses_resize:
            params["Hires resize"] = f"{self.hr_resize_x}x{self.hr_resize_y}"
        else:
            params["Hires upscale"] = self.hr_scale
        params["Hires steps"] = self.hr_second_pass_steps or None
        params["Hires upscaler"] = self.hr_upscaler
        # compared as resolved, so the schedule "Automatic" picks for another sampler is written too
        first_spec, first_schedule = samplers.resolve(first.sampler_name, first.scheduler)
        spec, schedule = samplers.resolve(self.sampler_name(first), self.scheduler(first))
        params["Hires sampler"] = spec.name if spec.name != first_spec.name else None
        params["Hires schedule type"] = schedule.label if schedule.label != first_schedule.label else None
        prompt, negative = self.prompts(first)
        params["Hires prompt"] = prompt if prompt != first.prompt else None
        params["Hires negative prompt"] = negative if negative != first.negative_prompt else None
        return params

    def validate(self, first: FirstPass) -> None:
        """Raise :class:`ValidationError` naming the first bad field (A1111's API name).

        Whether ``hr_upscaler`` names an installed upscaler is checked when the job runs.
        """
        if not isinstance(self.hr_upscaler, str) or not self.hr_upscaler.strip():
            raise ValidationError("hr_upscaler", f"must name a latent mode or an upscaler, got {self.hr_upscaler!r}")
        _whole("hr_second_pass_steps", self.hr_second_pass_steps, 0, 150)
        if not _is_number(self.denoising_strength) or not 0 < self.denoising_strength <= 1:
            raise ValidationError("denoising_strength", "must be above 0 and at most 1 for hires fix, "
                                  f"got {self.denoising_strength!r}")
        self._validate_size(first)
        for field, value in (("hr_prompt", self.hr_prompt), ("hr_negative_prompt", self.hr_negative_prompt)):
            if not isinstance(value, str):
                raise ValidationError(field, "must be text")
            check_prompt_length(field, value)
        try:
            samplers.resolve(self.sampler_name(first), self.scheduler(first))
        except ValidationError as exc:
            field = "hr_sampler_name" if exc.field == "sampler_name" else "hr_scheduler"
            raise ValidationError(field, exc.message) from exc

    def _validate_size(self, first: FirstPass) -> None:
        _whole("hr_resize_x", self.hr_resize_x, 0, MAX_SIDE)
        _whole("hr_resize_y", self.hr_resize_y, 0, MAX_SIDE)
        if not self.uses_resize and (not _is_number(self.hr_scale) or not 1 <= self.hr_scale <= 8):
            raise ValidationError("hr_scale", f"must be a number from 1 to 8, got {self.hr_scale!r}")
        target = self.target_size(first.width, first.height)
        cover = self.upscale_size(first.width, first.height)
        if min(target) >= 64 and max(cover) <= MAX_SIDE:
            return
        if not self.uses_resize:
            field = "hr_scale"
        else:
            field = "hr_resize_x" if self.hr_resize_x else "hr_resize_y"
        raise ValidationError(field, f"gives a {target[0]}x{target[1]} image (upscaled to {cover[0]}x{cover[1]}) "
                              f"from {first.width}x{first.height}; each side must be from 64 to {MAX_SIDE}")
