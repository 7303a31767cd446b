"""Distilled model families (Turbo, LCM, Lightning, Hyper) and the steps, CFG and sampler they are made for.

They share the SD 1.x / SD 2.x / SDXL architectures, so nothing in the tensors tells them apart; only
their distillation differs, and with it the usable settings (20 steps at CFG 7 gives burnt images).
A family is read from the model's own statement first (a diffusers folder whose scheduler is
``LCMScheduler``), then from its name and its ``modelspec.title``. It only changes what the UI suggests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from pipelines.models.header import SafetensorsHeader


class ModelFamily(StrEnum):
    TURBO = "turbo"  # SD-Turbo, SDXL-Turbo (adversarial diffusion distillation)
    LCM = "lcm"  # latent consistency models
    LIGHTNING = "lightning"  # SDXL-Lightning
    HYPER = "hyper"  # Hyper-SD


@dataclass(frozen=True)
class ModelFamilyHint:
    """The settings a family is made for: inclusive step and CFG ranges and a sampler of the menu."""

    label: str
    steps: tuple[int, int]
    cfg: tuple[float, float]
    sampler: str

    @property
    def text(self) -> str:
        steps = f"{self.steps[0]}" if self.steps[0] == self.steps[1] else f"{self.steps[0]}–{self.steps[1]}"
        low, high = (f"{c:g}" for c in self.cfg)
        cfg = low if low == high else f"{low}–{high}"
        return f"{self.label} model: {steps} steps, CFG scale {cfg}, sampler {self.sampler}"

    def fits(self, steps: int, cfg_scale: float) -> bool:
        """Whether a job's steps and CFG scale are within what the family is made for."""
        return self.steps[0] <= steps <= self.steps[1] and self.cfg[0] <= cfg_scale <= self.cfg[1]


# CFG at or below 1 turns classifier-free guidance off, which is how these models are sampled.
HINTS: dict[ModelFamily, ModelFamilyHint] = {
    ModelFamily.TURBO: ModelFamilyHint("Turbo", (1, 4), (0.0, 1.0), "Euler a"),
    ModelFamily.LCM: ModelFamilyHint("LCM", (4, 8), (1.0, 2.0), "LCM"),
    ModelFamily.LIGHTNING: ModelFamilyHint("Lightning", (2, 8), (1.0, 2.0), "Euler"),
    ModelFamily.HYPER: ModelFamilyHint("Hyper-SD", (1, 8), (1.0, 2.0), "DDIM"),
}

_SCHEDULER_FAMILIES = {"LCMScheduler": ModelFamily.LCM}
_STEP_COUNT = re.compile(r"(\d+)[-_ ]?steps?\b")


def family_from_name(name: str) -> ModelFamily | None:
    """``sdxl-turbo``, ``LCM_Dreamshaper_v7``, ``sdxl_lightning_4step``, ``Hyper-SD15-8steps``, ..."""
    lowered = name.lower()
    words = set(re.split(r"[^a-z0-9]+", lowered))
    if "turbo" in lowered:
        return ModelFamily.TURBO
    if "lightning" in lowered:
        return ModelFamily.LIGHTNING
    if "lcm" in words or any(w.startswith("lcm") for w in words):
        return ModelFamily.LCM
    if "hyper" in words or any(w.startswith("hypersd") for w in words):
        return ModelFamily.HYPER
    return None


def _scheduler_class(folder: Path) -> str | None:
    # model_index.json names the class diffusers builds; the scheduler's own config says it too
    for path, read in ((folder / "model_index.json", lambda d: (d.get("scheduler") or [None, None])[-1]),
                       (folder / "scheduler" / "scheduler_config.json", lambda d: d.get("_class_name"))):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(value := read(data), str):
            return value
    return None


def folder_family(folder: Path, name: str) -> ModelFamily | None:
    """A diffusers folder's family: its scheduler class when that says so, else its name."""
    return _SCHEDULER_FAMILIES.get(_scheduler_class(folder) or "") or family_from_name(name)


def file_family(name: str, header: SafetensorsHeader) -> ModelFamily | None:
    """A single file's family: its name, else the ``modelspec.title`` in its header."""
    return family_from_name(name) or family_from_name(header.metadata.get("modelspec.title", ""))


def hint_for(name: str, family: ModelFamily | None = None, *, turbo: bool = False) -> ModelFamilyHint | None:
    """The suggested settings for a checkpoint called ``name`` (its recognised ``family``, if any; ``turbo``:
    its kind says Turbo), or None for an ordinary one. ``ModelRecord.family_hint`` calls this."""
    family = family or family_from_name(name)  # a Hub repo not downloaded yet: its name
    if family is None and turbo:
        family = ModelFamily.TURBO
    if family is None:
        return None
    hint = HINTS[family]
    match = _STEP_COUNT.search(name.lower())
    if match and family in (ModelFamily.LIGHTNING, ModelFamily.HYPER):  # made for the step count in its name
        steps = int(match.group(1))
        hint = replace(hint, steps=(steps, steps))
    return hint
