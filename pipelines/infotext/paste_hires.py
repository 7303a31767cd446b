"""A1111's paste for hires fix: the ``Hires ...`` infotext keys onto :class:`HiresFix`.

Labels follow A1111's ``PasteField`` table::

    Denoising strength -> denoising_strength     Hires upscale -> hr_scale
    Hires upscaler -> hr_upscaler                Hires steps -> hr_second_pass_steps
    Hires resize-1 / -2 -> hr_resize_x / y       Hires sampler / Hires schedule type -> hr_sampler_name / hr_scheduler
    Hires prompt / Hires negative prompt -> hr_prompt / hr_negative_prompt

Hires fix is on when the infotext has ``Denoising strength`` and one of ``Hires upscale``,
``Hires upscaler`` or ``Hires resize`` (A1111's rule for its checkbox); an infotext without them
turns it off, as pasting does in A1111. Missing keys take A1111's defaults ("Use same sampler", ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipelines import samplers
from pipelines.errors import ValidationError
from pipelines.requests import Txt2ImgRequest
from pipelines.requests.hires import SAME_SAMPLER, SAME_SCHEDULER, HiresFix

HIRES_KEYS = ("Denoising strength", "Hires upscale", "Hires resize", "Hires steps", "Hires upscaler",
              "Hires sampler", "Hires schedule type", "Hires prompt", "Hires negative prompt")


def _whole(text: str) -> int:
    number = float(text)
    if not number.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    return int(number)


_VALUES: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("Denoising strength", "denoising_strength", float),
    ("Hires upscale", "hr_scale", float),
    ("Hires resize-1", "hr_resize_x", _whole),
    ("Hires resize-2", "hr_resize_y", _whole),
    ("Hires steps", "hr_second_pass_steps", _whole),
    ("Hires upscaler", "hr_upscaler", str.strip),
    ("Hires prompt", "hr_prompt", str),
    ("Hires negative prompt", "hr_negative_prompt", str),
)


def hires_enabled(params: Mapping[str, str]) -> bool:
    return "Denoising strength" in params and any(k in params for k in ("Hires upscale", "Hires upscaler",
                                                                          "Hires resize-1"))


def _sampler_fields(params: Mapping[str, str], notes: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    raw = params.get("Hires sampler", SAME_SAMPLER).strip()
    if raw != SAME_SAMPLER:
        spec = samplers.find_sampler(raw)
        if spec is None:
            notes.append(f"Hires sampler {raw!r} is not available in Atelier; using the same sampler.")
        else:
            values["hr_sampler_name"] = spec.name
    raw = params.get("Hires schedule type", SAME_SCHEDULER).strip()
    if raw != SAME_SCHEDULER:
        schedule = samplers.find_schedule(raw)
        if schedule is None:
            notes.append(f"Hires schedule type {raw!r} is not available in Atelier; using the same schedule.")
        else:
            values["hr_scheduler"] = schedule.label
    return values


def paste_hires(params: Mapping[str, str], fields: dict[str, Any], notes: list[str]) -> None:
    """Set ``fields["hires"]`` from ``params``: a :class:`HiresFix`, or None when the infotext has no
    hires fix. Values it cannot use are noted; a hires fix that fails validation leaves the field as it is."""
    if not hires_enabled(params):
        fields["hires"] = None
        return
    values: dict[str, Any] = {}
    for label, name, convert in _VALUES:
        if label not in params:
            continue
        try:
            values[name] = convert(params[label])
        except ValueError as exc:
            notes.append(f"{label.removesuffix('-1').removesuffix('-2')} {params[label]!r} skipped: {exc}.")
    values.update(_sampler_fields(params, notes))
    hires = HiresFix(**values)
    size = {k: fields[k] for k in ("width", "height", "sampler_name", "scheduler") if k in fields}
    try:
        Txt2ImgRequest(**size, hires=hires).validate()
    except ValidationError as exc:
        notes.append(f"Hires fix skipped: {exc}.")
        return
    fields["hires"] = hires
