"""A1111's LoRA tags in prompt text: ``<lora:NAME>``, ``<lora:NAME:W>``, ``<lora:NAME:TE_W:UNET_W>``.

A tag is removed from the text the text encoder reads and names a LoRA for the whole job. The
arguments are ``:``-separated: the name, then the text-encoder weight (default 1), then the UNet
weight (default: the text-encoder weight); ``te=`` and ``unet=`` name them instead of placing them.
``<lyco:...>`` (the LyCORIS extension's spelling, which A1111 still accepts) means the same. Tags
in the negative prompt apply too, and the same LoRA named twice adds up: its weights are summed.
Other ``<kind:...>`` tags (hypernetworks...) are left in the text untouched.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.errors import ValidationError

__all__ = ["LoraTag", "PromptLoras", "extract_loras", "merge_tags", "parse_lora_tags"]

# A1111's extra-network tag: a word, a colon, then anything up to the closing bracket.
_TAG = re.compile(r"<(lora|lyco):([^>]*)>")


@dataclass(frozen=True)
class LoraTag:
    """One LoRA a prompt asks for, with its text-encoder and UNet weights."""

    name: str
    te_weight: float = 1.0
    unet_weight: float = 1.0

    def __add__(self, other: LoraTag) -> LoraTag:
        return LoraTag(self.name, self.te_weight + other.te_weight, self.unet_weight + other.unet_weight)

    def tag(self) -> str:
        """The shortest tag that means this LoRA at these weights."""
        te, unet = _number(self.te_weight), _number(self.unet_weight)
        if self.te_weight == self.unet_weight:
            return f"<lora:{self.name}>" if self.te_weight == 1 else f"<lora:{self.name}:{te}>"
        return f"<lora:{self.name}:{te}:{unet}>"


@dataclass(frozen=True)
class PromptLoras:
    """A prompt pair with its LoRA tags taken out, and the LoRAs they name (merged)."""

    prompt: str
    negative_prompt: str
    tags: tuple[LoraTag, ...]


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _weight(text: str, *, what: str, tag: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(field, f"{tag}: the {what} weight {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValidationError(field, f"{tag}: the {what} weight must be a finite number, not {text!r}")
    return value


def _parse_tag(body: str, tag: str, field: str) -> LoraTag:
    positional: list[str] = []
    named: dict[str, str] = {}
    for part in body.split(":"):
        key, eq, value = part.partition("=")
        if eq:
            named[key.strip()] = value.strip()
        else:
            positional.append(part.strip())
    unknown = sorted(set(named) - {"te", "unet"})
    if "dyn" in unknown or len(positional) > 3:
        raise ValidationError(field, f"{tag}: dynamic rank (dyn) is not supported; use <lora:NAME:TE_W:UNET_W>")
    if unknown:
        raise ValidationError(field, f"{tag}: unknown argument {unknown[0]!r} (known: te=, unet=)")
    name = positional[0] if positional else ""
    if not name:
        raise ValidationError(field, f"{tag}: the LoRA name is missing (write <lora:NAME:WEIGHT>)")
    te = _weight(positional[1], what="text-encoder", tag=tag, field=field) if len(positional) > 1 else 1.0
    te = _weight(named["te"], what="text-encoder", tag=tag, field=field) if "te" in named else te
    unet = _weight(positional[2], what="UNet", tag=tag, field=field) if len(positional) > 2 else te
    unet = _weight(named["unet"], what="UNet", tag=tag, field=field) if "unet" in named else unet
    return LoraTag(name, te, unet)


def parse_lora_tags(text: str, *, field: str = "prompt") -> tuple[str, list[LoraTag]]:
    """``text`` without its LoRA tags, and the tags in the order written (not merged).

    The tags are cut out exactly, as A1111 does, so the surrounding text (spaces, commas) stays as
    written. A malformed tag raises :class:`ValidationError` naming ``field``.
    """
    tags = [_parse_tag(m.group(2), m.group(0), field) for m in _TAG.finditer(text)]
    return _TAG.sub("", text), tags


def merge_tags(tags: Iterable[LoraTag]) -> list[LoraTag]:
    """One entry per LoRA name, in first-seen order; a name given twice has its weights summed."""
    merged: dict[str, LoraTag] = {}
    for tag in tags:
        merged[tag.name] = merged[tag.name] + tag if tag.name in merged else tag
    return list(merged.values())


def extract_loras(prompt: str, negative_prompt: str = "") -> PromptLoras:
    """Take the LoRA tags out of both prompts; the LoRAs of both apply (A1111)."""
    clean, tags = parse_lora_tags(prompt, field="prompt")
    clean_negative, negative_tags = parse_lora_tags(negative_prompt, field="negative_prompt")
    return PromptLoras(clean, clean_negative, tuple(merge_tags([*tags, *negative_tags])))
