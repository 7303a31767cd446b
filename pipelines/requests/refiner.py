"""The SDXL refiner of a txt2img job (A1111 1.6+'s ``refiner_checkpoint`` / ``refiner_switch_at``).

The job's checkpoint denoises the first ``switch_at`` of the schedule; the refiner checkpoint takes
over the remaining steps of the same schedule, on the same latents (diffusers' "ensemble of expert
denoisers": ``denoising_end`` on the base pass, ``denoising_start`` on the refiner's). ``switch_at``
1 means the refiner never takes over: the job is the base alone, as in A1111.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.errors import ValidationError

DEFAULT_SWITCH_AT = 0.8  # A1111's UI default


@dataclass(frozen=True)
class Refiner:
    """Which checkpoint refines, and the fraction of the schedule after which it takes over."""

    checkpoint: str  # a checkpoint's name, title ("name [hash]"), hash or Hub repo id, as for ``model``
    switch_at: float = DEFAULT_SWITCH_AT

    @property
    def active(self) -> bool:
        """False when the switch point is the end of the schedule (the refiner would run no step)."""
        return self.switch_at < 1

    def validate(self) -> None:
        """Raise :class:`ValidationError` naming A1111's API field."""
        if not isinstance(self.checkpoint, str) or not self.checkpoint.strip():
            raise ValidationError("refiner_checkpoint", f"must name a checkpoint, got {self.checkpoint!r}")
        value = self.switch_at
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise ValidationError("refiner_switch_at", f"must be a number above 0 and at most 1 (1: the refiner "
                                  f"never takes over), got {value!r}")

    @staticmethod
    def infotext_params(title: str, switch_at: float) -> dict[str, object]:
        """A1111's keys: ``Refiner: name [hash10]``, ``Refiner switch at: 0.8``."""
        return {"Refiner": title, "Refiner switch at": switch_at}
