"""The "⚡ Fast preset": steps, CFG scale and sampler a few-step model (Turbo, LCM, Lightning, Hyper) is made for,
in one call, plus the TAESD final decoder when one for the model's family is installed.

A checkpoint's family comes from :mod:`pipelines.models.families` (its scheduler, name or ``modelspec.title``).
An ordinary checkpoint with an LCM-LoRA in the prompt (``<lora:lcm-lora-sdv1-5:1>``: ``lcm`` in the LoRA's file
name, or in its training metadata ``ss_output_name`` / ``modelspec.title``) is sampled as an LCM model.

Turbo gets 1 step (what SD-Turbo and SDXL-Turbo are distilled for, and the fastest on a CPU; 2-4 steps add
detail), LCM 4. CFG scale 1 turns classifier-free guidance off, which halves each step's cost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines.errors import AtelierError, ValidationError
from pipelines.models.families import HINTS, ModelFamily, family_from_name
from pipelines.models.header import read_header
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord
from pipelines.models.store import ModelStore
from pipelines.networks.taesd import find_taesd
from pipelines.networks.tags import extract_loras
from pipelines.requests.decoders import FULL, TAESD

_LORA_METADATA = ("ss_output_name", "modelspec.title", "ss_training_comment")


@dataclass(frozen=True)
class FastPreset:
    """What the preset sets; field names are the request's (and the A1111 API's)."""

    model: str
    family: str  # the family's label: "LCM", "Turbo", "Lightning", "Hyper-SD"
    reason: str  # what made it that family: "the model" or "LoRA <name>"
    steps: int
    cfg_scale: float
    sampler_name: str
    scheduler: str
    sd_vae_decode_method: str  # TAESD when one for the model's family is installed, else Full
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lora_family(store: ModelStore, name: str) -> ModelFamily | None:
    """LCM for an LCM-LoRA: ``lcm`` in the name it is written with, its file name or its training metadata."""
    if family_from_name(name) is ModelFamily.LCM:
        return ModelFamily.LCM
    try:
        record = store.find(name, ModelType.LORA)
    except AtelierError:
        return None
    if record.path is not None and family_from_name(record.path.stem) is ModelFamily.LCM:
        return ModelFamily.LCM
    metadata = read_header(record.path).metadata if record.path is not None else {}
    if any(family_from_name(str(metadata.get(key, ""))) is ModelFamily.LCM for key in _LORA_METADATA):
        return ModelFamily.LCM
    return None


def job_family(store: ModelStore, record: ModelRecord, prompt: str = "") -> tuple[ModelFamily | None, str]:
    """The family a job on ``record`` with ``prompt`` samples as, and why: the checkpoint's own, else an
    LCM-LoRA's in the prompt."""
    hint = record.family_hint
    if hint is not None:
        family = next(f for f, h in HINTS.items() if h.label == hint.label)
        return family, "the model"
    for tag in extract_loras(prompt, "").tags:
        if lora_family(store, tag.name) is ModelFamily.LCM:
            return ModelFamily.LCM, f"LoRA {tag.name}"
    return None, ""


def fast_preset(store: ModelStore, model: str, prompt: str = "") -> FastPreset:
    """The fast settings for checkpoint ``model`` (a name, title or Hub repo id) with ``prompt``'s LoRAs;
    a ValidationError naming ``model`` for an ordinary model without an LCM-LoRA."""
    if not model:
        raise ValidationError("model", "no checkpoint selected")
    try:
        record = store.resolve(model)
    except AtelierError as exc:
        raise ValidationError("model", str(exc)) from exc
    family, reason = job_family(store, record, prompt)
    if family is None:
        raise ValidationError("model", f"{record.name} is not a few-step model (Turbo, LCM, Lightning, Hyper-SD) "
                              "and the prompt has no LCM-LoRA: pick such a model or add one, e.g. "
                              "<lora:lcm-lora-sdv1-5:1>")
    hint = HINTS[family] if reason != "the model" else record.family_hint
    assert hint is not None
    steps = hint.steps[0]
    cfg = max(1.0, hint.cfg[0])  # 1 is the lowest CFG A1111's slider offers; at 1 guidance is off
    taesd = find_taesd(store, record.architecture)
    decode = TAESD if taesd is not None else FULL
    note = (f"{hint.label} ({reason}): {steps} step{'s' if steps > 1 else ''}, CFG scale {cfg:g}, sampler "
            f"{hint.sampler}; " + (f"decoding with TAESD ({taesd.name})" if taesd is not None else
                                   "install TAESD (models/VAE-taesd) for a faster final decode"))
    return FastPreset(model=record.name, family=hint.label, reason=reason, steps=steps, cfg_scale=cfg,
                      sampler_name=hint.sampler, scheduler="Automatic", sd_vae_decode_method=decode, note=note)
