"""The X/Y/Z plot's axes: A1111's axis names, how a value list is read, and what one value changes in a request.

Values are comma-separated (quotes allowed, as in CSV). Number axes also take A1111's ranges:
``1-5`` (1, 2, 3, 4, 5), ``1-10 (+3)`` (1, 4, 7, 10), ``1-2 [5]`` (5 values evenly from 1 to 2).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

Apply = Callable[[Any, Any], Any]  # (request, value) -> changed request

_RANGE = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?)\s*-\s*([+-]?\d+(?:\.\d*)?)\s*(?:\(\s*([+-]?\d+(?:\.\d*)?)\s*\))?\s*$")
_COUNT = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?)\s*-\s*([+-]?\d+(?:\.\d*)?)\s*\[\s*(\d+)\s*\]\s*$")
_LORA = re.compile(r"<(lora|lyco):([^:>]+)(?::[^>]*)?>")


def split_values(text: str) -> list[str]:
    """Comma-separated values, CSV quoting honoured, blanks dropped."""
    rows = list(csv.reader([text.strip()], skipinitialspace=True)) if text.strip() else []
    return [v.strip() for v in (rows[0] if rows else []) if v.strip()]


def _numbers(text: str, kind: type) -> list[Any]:
    out: list[Any] = []
    for item in split_values(text):
        if match := _COUNT.match(item):
            start, end, count = float(match[1]), float(match[2]), int(match[3])
            values = [start + (end - start) * i / max(count - 1, 1) for i in range(count)]
            out += [kind(round(v)) if kind is int else round(v, 6) for v in values]
        elif match := _RANGE.match(item):
            start, end = kind(float(match[1])), kind(float(match[2]))
            step = kind(float(match[3])) if match[3] else kind(1)
            if step == 0 or (end - start) * step < 0:
                raise ValueError(f"the range {item!r} never reaches its end")
            value = start
            while (value <= end) if step > 0 else (value >= end):
                out.append(round(value, 6) if kind is float else value)
                value += step
        else:
            try:
                out.append(kind(float(item)) if kind is int else float(item))
            except ValueError:
                raise ValueError(f"{item!r} is not a number") from None
    return out


def _denoising(request: Any, value: float) -> Any:
    if hasattr(request, "denoising_strength"):
        return replace(request, denoising_strength=value)
    hires = getattr(request, "hires", None)
    if hires is None:
        raise ValueError("Denoising needs img2img or txt2img with hires fix on")
    return replace(request, hires=replace(hires, denoising_strength=value))


def _lora_weight(request: Any, value: float) -> Any:
    if not _LORA.search(request.prompt):
        raise ValueError("LoRA weight needs a <lora:NAME:WEIGHT> tag in the prompt")
    return replace(request, prompt=_LORA.sub(lambda m: f"<{m[1]}:{m[2]}:{value:g}>", request.prompt))


def _prompt_sr(request: Any, value: str, search: str) -> Any:
    return replace(request, prompt=request.prompt.replace(search, value),
                   negative_prompt=request.negative_prompt.replace(search, value))


@dataclass(frozen=True)
class Axis:
    label: str  # A1111's name of the axis
    parse: Callable[[str], list[Any]]
    apply: Apply | None  # None: "Nothing"; Prompt S/R is special-cased (it needs the first value)
    modes: tuple[str, ...] = ("txt2img", "img2img")

    def values(self, text: str) -> list[Any]:
        if self.apply is None:
            return [None]
        values = self.parse(text)
        if not values:
            raise ValueError(f"{self.label}: give at least one value")
        return values


def _text(text: str) -> list[str]:
    return split_values(text)


AXES: tuple[Axis, ...] = (
    Axis("Nothing", _text, None),
    Axis("Seed", lambda t: _numbers(t, int), lambda r, v: replace(r, seed=v)),
    Axis("Var. seed", lambda t: _numbers(t, int), lambda r, v: replace(r, subseed=v), ("txt2img",)),
    Axis("Var. strength", lambda t: _numbers(t, float), lambda r, v: replace(r, subseed_strength=v), ("txt2img",)),
    Axis("Steps", lambda t: _numbers(t, int), lambda r, v: replace(r, steps=v)),
    Axis("CFG Scale", lambda t: _numbers(t, float), lambda r, v: replace(r, cfg_scale=v)),
    Axis("Prompt S/R", _text, lambda r, v: r),
    Axis("Sampler", _text, lambda r, v: replace(r, sampler_name=v)),
    Axis("Schedule type", _text, lambda r, v: replace(r, scheduler=v)),
    Axis("Checkpoint name", _text, lambda r, v: replace(r, model=v)),
    Axis("Clip skip", lambda t: _numbers(t, int), lambda r, v: replace(r, clip_skip=v)),
    Axis("Denoising", lambda t: _numbers(t, float), _denoising),
    Axis("LoRA weight", lambda t: _numbers(t, float), _lora_weight),
)
AXIS_LABELS = tuple(axis.label for axis in AXES)

# A1111 1.10's axis list, in its order, with the mode an axis is limited to; its dropdown (and so the index
# a client sends in script_args) lists the shared axes plus those of the tab's mode.
A1111_AXES: tuple[tuple[str, str | None], ...] = (
    ("Nothing", None), ("Seed", None), ("Var. seed", None), ("Var. strength", None), ("Steps", None),
    ("Hires steps", "txt2img"), ("CFG Scale", None), ("Image CFG Scale", "img2img"), ("Prompt S/R", None),
    ("Prompt order", None), ("Sampler", "txt2img"), ("Hires sampler", "txt2img"), ("Sampler", "img2img"),
    ("Checkpoint name", None), ("Negative Guidance minimum sigma", None), ("Sigma Churn", None),
    ("Sigma min", None), ("Sigma max", None), ("Sigma noise", None), ("Schedule type", None),
    ("Schedule min sigma", None), ("Schedule max sigma", None), ("Schedule rho", None), ("Eta", None),
    ("Clip skip", None), ("Denoising", None), ("Initial noise multiplier", None), ("Extra noise", None),
    ("Hires upscaler", "txt2img"), ("Cond. Image Mask Weight", "img2img"), ("VAE", None), ("Styles", None),
    ("UniPC Order", None), ("Face restore", None), ("Token merging ratio", None),
    ("Token merging ratio high-res", None), ("Always discard next-to-last sigma", None),
    ("SGM noise multiplier", None), ("Refiner checkpoint", None), ("Refiner switch at", None), ("RNG source", None),
)


def a1111_axis_label(index: int, mode: str) -> str:
    """The label of A1111's axis ``index`` in the ``mode`` tab's dropdown (its positional script_args)."""
    labels = [label for label, only in A1111_AXES if only in (None, mode)]
    if not 0 <= index < len(labels):
        raise ValueError(f"A1111 axis index {index} is out of range 0-{len(labels) - 1}")
    label = labels[index]
    if label not in AXIS_LABELS:
        raise ValueError(f"A1111's axis {label!r} (index {index}) is not available in Atelier; the axes are "
                         f"{list(AXIS_LABELS)}")
    return label


def axis(type_: Any, mode: str) -> Axis:
    """An axis by label (case-insensitive) or by A1111's index in the ``mode`` tab (:func:`a1111_axis_label`)."""
    if isinstance(type_, int) and not isinstance(type_, bool):
        type_ = a1111_axis_label(type_, mode)
    found = next((a for a in AXES if a.label.lower() == str(type_).strip().lower()), None)
    if found is None:
        raise ValueError(f"unknown axis {type_!r}; the axes are {list(AXIS_LABELS)}")
    if mode not in found.modes:
        raise ValueError(f"the {found.label} axis is for {', '.join(found.modes)} only")
    return found


def apply_value(ax: Axis, request: Any, value: Any, values: list[Any]) -> Any:
    if ax.apply is None:
        return request
    if ax.label == "Prompt S/R":
        return _prompt_sr(request, value, values[0])
    return ax.apply(request, value)
