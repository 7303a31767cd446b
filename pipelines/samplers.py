"""AUTOMATIC1111 sampler and schedule names mapped onto diffusers schedulers.

A sampler menu is a table, not sampler code: each entry names a diffusers
scheduler class and the config overrides that make it behave like the
k-diffusion sampler A1111 users know. A fresh scheduler instance is built per
job from the model's own scheduler config, so jobs never share one.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import ValidationError
from pipelines.lazy_diffusers import diffusers_attr


@dataclass(frozen=True)
class Schedule:
    """A noise schedule ("Schedule type" in A1111's infotext)."""

    name: str  # A1111's API name, e.g. "karras"
    label: str  # shown in UI and infotext, e.g. "Karras"
    config_flag: str | None  # diffusers config flag that turns it on
    default_rho: float = -1.0


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("automatic", "Automatic", None),
    Schedule("uniform", "Uniform", None),
    Schedule("karras", "Karras", "use_karras_sigmas", 7.0),
    Schedule("exponential", "Exponential", "use_exponential_sigmas", 1.0),
    Schedule("beta", "Beta", "use_beta_sigmas"),
)
_SIGMA_FLAGS = tuple(s.config_flag for s in SCHEDULES if s.config_flag)


@dataclass(frozen=True)
class SamplerSpec:
    """One entry of the sampler menu."""

    name: str
    scheduler_class: str
    config: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    default_schedule: str = "uniform"
    max_steps: int = 150  # A1111's slider limit; DDPM samples with all its training steps (1000)
    pixel_space_only: bool = False  # runs unconditional pixel-space models only (DDPM)

    def scheduler_cls(self) -> type:
        return diffusers_attr(self.scheduler_class)

    def supported_schedules(self) -> list[Schedule]:
        """Schedules this sampler's diffusers class can run."""
        params = inspect.signature(self.scheduler_cls().__init__).parameters
        return [s for s in SCHEDULES if s.config_flag is None or s.config_flag in params]


SAMPLERS: tuple[SamplerSpec, ...] = (
    SamplerSpec("DPM++ 2M", "DPMSolverMultistepScheduler",
                {"algorithm_type": "dpmsolver++", "solver_order": 2}, ("k_dpmpp_2m",), "karras"),
    SamplerSpec("DPM++ SDE", "DPMSolverSDEScheduler", {}, ("k_dpmpp_sde",), "karras"),
    SamplerSpec("DPM++ 2M SDE", "DPMSolverMultistepScheduler",
                {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}, ("k_dpmpp_2m_sde",), "exponential"),
    SamplerSpec("DPM++ 3M SDE", "DPMSolverMultistepScheduler",
                {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}, ("k_dpmpp_3m_sde",), "exponential"),
    SamplerSpec("Euler a", "EulerAncestralDiscreteScheduler", {}, ("k_euler_a", "k_euler_ancestral")),
    SamplerSpec("Euler", "EulerDiscreteScheduler", {}, ("k_euler",)),
    SamplerSpec("LMS", "LMSDiscreteScheduler", {}, ("k_lms",)),
    SamplerSpec("Heun", "HeunDiscreteScheduler", {}, ("k_heun",)),
    SamplerSpec("DPM2", "KDPM2DiscreteScheduler", {}, ("k_dpm_2",), "karras"),
    SamplerSpec("DPM2 a", "KDPM2AncestralDiscreteScheduler", {}, ("k_dpm_2_a",), "karras"),
    SamplerSpec("DEIS", "DEISMultistepScheduler", {}, ("deis",)),
    SamplerSpec("DDIM", "DDIMScheduler", {}, ("ddim",)),
    SamplerSpec("PLMS", "PNDMScheduler", {"skip_prk_steps": True}, ("PNDM", "plms", "pndm")),
    SamplerSpec("UniPC", "UniPCMultistepScheduler", {}, ("unipc",)),
    SamplerSpec("LCM", "LCMScheduler", {}, ("lcm", "k_lcm")),
)

DEFAULT_SAMPLER = "Euler a"

# Unconditional pixel-space models (pipelines/modes/unconditional.py) sample with the two schedulers their
# papers used: DDPM (ancestral, every training step by default) and DDIM (deterministic, eta 0, fewer steps).
# DDPM is not in the SD menu above: it is offered only when such a model is selected.
DDPM = SamplerSpec("DDPM", "DDPMScheduler", {}, ("ddpm",), max_steps=1000, pixel_space_only=True)
UNCONDITIONAL_SAMPLERS: tuple[SamplerSpec, ...] = (DDPM, next(s for s in SAMPLERS if s.name == "DDIM"))


def _lookup(table: dict[str, Any], name: str) -> Any:
    return table.get(name.strip().lower())


_SAMPLER_INDEX: dict[str, SamplerSpec] = {
    key.lower(): spec for spec in (*SAMPLERS, DDPM) for key in (spec.name, *spec.aliases)
}
_SCHEDULE_INDEX: dict[str, Schedule] = {
    key.lower(): s for s in SCHEDULES for key in (s.name, s.label)
}


def sampler_names() -> list[str]:
    return [s.name for s in SAMPLERS]


def unconditional_sampler_names() -> list[str]:
    """The samplers an unconditional pixel-space model runs with (DDPM first: its default)."""
    return [s.name for s in UNCONDITIONAL_SAMPLERS]


def schedule_labels() -> list[str]:
    return [s.label for s in SCHEDULES]


def find_sampler(name: str) -> SamplerSpec | None:
    """The menu entry for an A1111 name or alias (``"k_dpmpp_2m"``), or None; never raises."""
    return _lookup(_SAMPLER_INDEX, name)


def find_schedule(name: str) -> Schedule | None:
    """The schedule for a label or API name (``"Karras"``, ``"karras"``), or None; never raises."""
    return _lookup(_SCHEDULE_INDEX, name)


def split_legacy_name(name: str) -> tuple[str, str | None]:
    """Split pre-1.9 names such as ``"DPM++ 2M Karras"`` into sampler and schedule."""
    base = name.strip()
    for schedule in SCHEDULES[2:]:
        suffix = " " + schedule.label
        if base.lower().endswith(suffix.lower()) and _lookup(_SAMPLER_INDEX, base[: -len(suffix)]):
            return base[: -len(suffix)], schedule.label
    return base, None


def resolve(sampler_name: str, schedule: str | None = "Automatic") -> tuple[SamplerSpec, Schedule]:
    """Find the sampler and the concrete schedule a request asks for.

    "Automatic" resolves to the sampler's own default, as A1111 does.
    """
    base, legacy_schedule = split_legacy_name(sampler_name or DEFAULT_SAMPLER)
    spec = _lookup(_SAMPLER_INDEX, base)
    if spec is None:
        choices = ", ".join(sampler_names())
        raise ValidationError("sampler_name", f"unknown sampler {sampler_name!r}; choose one of {choices}")
    wanted = schedule or "Automatic"
    if legacy_schedule and wanted.lower() in ("automatic", ""):
        wanted = legacy_schedule
    sched = _lookup(_SCHEDULE_INDEX, wanted)
    if sched is None:
        choices = ", ".join(schedule_labels())
        raise ValidationError("scheduler", f"unknown schedule type {wanted!r}; choose one of {choices}")
    if sched.name == "automatic":
        sched = _SCHEDULE_INDEX[spec.default_schedule]
    if sched not in spec.supported_schedules():
        raise ValidationError("scheduler", f"schedule type {sched.label!r} is not available for sampler {spec.name!r}")
    return spec, sched


def build_scheduler(base_config: dict[str, Any], spec: SamplerSpec, schedule: Schedule) -> Any:
    """A new scheduler instance for one job, built from the model's own config."""
    cls = spec.scheduler_cls()
    params = inspect.signature(cls.__init__).parameters
    overrides: dict[str, Any] = {flag: False for flag in _SIGMA_FLAGS if flag in params}
    if schedule.config_flag:
        overrides[schedule.config_flag] = True
    overrides.update(spec.config)
    return cls.from_config(dict(base_config), **overrides)
