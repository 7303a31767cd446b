"""Lower-memory modes for one job, applied to the held pipelines through diffusers' public APIs and undone after.

- ``SLICED``: the VAE decoding one image at a time, in tiles, and attention computed in slices where it is
  the plain kind that builds the whole score matrix at once (diffusers' ``AttnProcessor``). PyTorch SDPA and
  xformers never build it, and slicing would swap their kernels for one that does, per slice: more memory,
  not less (diffusers' own advice: no slicing with SDPA or xformers);
- ``OFFLOAD``: that, and each model moved to the accelerator only while it runs (model CPU offload); on a
  CPU there is nowhere to offload to.

Undoing puts back each module's own attention processors and VAE flags, removes the offload hooks and moves
the models back to their device, so the next job on the cached model runs as it did before. When the device
has no room to take them back, the model stays offloaded and is marked so (``plan`` medvram: the cache drops
it rather than parks it, the status line says why).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

import torch

from pipelines.lazy_diffusers import diffusers_attr
from pipelines.models.loaded import LoadedModel
from pipelines.models.memory import MemoryPlan

log = logging.getLogger(__name__)
OFFLOADED = "model CPU offload"


class MemoryLevel(IntEnum):
    NORMAL = 0
    SLICED = 1
    OFFLOAD = 2

    @property
    def label(self) -> str:
        return {0: "no memory savings", 1: "VAE slicing and tiling", 2: "VAE slicing and tiling, model CPU offload"
                }[self.value]


def describe(savings: Sequence[str]) -> str:
    """``("VAE slicing", "VAE tiling", "model CPU offload")`` -> "VAE slicing, VAE tiling and model CPU offload"."""
    return savings[0] if len(savings) == 1 else f"{', '.join(savings[:-1])} and {savings[-1]}"


def offload_available(device: torch.device) -> bool:
    """Model CPU offload needs an accelerator to move the models to."""
    return device.type != "cpu"


def level_in_effect(loaded: LoadedModel) -> MemoryLevel:
    """The savings a model already runs with (``--medvram``/``--lowvram`` or the automatic plan)."""
    savings = loaded.optimizations.savings
    if any("offload" in saving for saving in savings):
        return MemoryLevel.OFFLOAD
    if "VAE tiling" in savings:
        return MemoryLevel.SLICED
    return MemoryLevel.NORMAL


def levels_for(loaded: LoadedModel) -> list[MemoryLevel]:
    """The levels a job on ``loaded`` can run at, lowest first: the one in effect and those above it the
    device can do."""
    current = level_in_effect(loaded)
    top = MemoryLevel.OFFLOAD if offload_available(loaded.device) else MemoryLevel.SLICED
    return [level for level in MemoryLevel if current <= level <= top] or [current]


@dataclass
class _Saved:
    """What one pipeline looked like before a job lowered it."""

    model: LoadedModel
    processors: dict[str, dict[str, Any]]  # component name -> its attention processors
    vae_slicing: bool
    vae_tiling: bool

    @classmethod
    def of(cls, model: LoadedModel) -> _Saved:
        pipe = model.pipeline
        processors = {name: dict(module.attn_processors) for name in ("unet", "vae")
                      if hasattr(module := getattr(pipe, name, None), "attn_processors")}
        vae = pipe.vae
        return cls(model, processors, bool(getattr(vae, "use_slicing", False)), bool(getattr(vae, "use_tiling", False)))


@dataclass
class LoweredJob:
    """The mode a job runs in: the savings applied, and the models that could not go back to their device."""

    level: MemoryLevel
    savings: list[str] = field(default_factory=list)
    kept_offloaded: list[LoadedModel] = field(default_factory=list)

    @property
    def label(self) -> str:
        return describe(self.savings) if self.savings else self.level.label


def _plain_attention(pipe: Any) -> bool:
    """Whether every attention layer of the UNet builds its whole score matrix at once."""
    plain = diffusers_attr("AttnProcessor", "diffusers.models.attention_processor")
    processors = getattr(pipe.unet, "attn_processors", {})
    return bool(processors) and all(type(p) is plain for p in processors.values())


def _apply(model: LoadedModel, level: MemoryLevel) -> list[str]:
    """Lower ``model``'s pipeline to ``level``; the savings applied."""
    pipe = model.pipeline
    savings = []
    if _plain_attention(pipe):
        pipe.enable_attention_slicing()
        savings.append("attention slicing")
    pipe.vae.enable_slicing()
    pipe.vae.enable_tiling()
    savings += ["VAE slicing", "VAE tiling"]
    if level >= MemoryLevel.OFFLOAD:
        in_effect = [saving for saving in model.optimizations.savings if "offload" in saving]  # --medvram/--lowvram
        if not in_effect:
            pipe.enable_model_cpu_offload(device=model.device)
        savings += in_effect or [OFFLOADED]
    return savings


def _restore(saved: _Saved, level: MemoryLevel) -> bool:
    """Undo :func:`_apply`; False when the models could not be moved back (they stay offloaded)."""
    pipe = saved.model.pipeline
    for name, processors in saved.processors.items():
        getattr(pipe, name).set_attn_processor(processors)
    vae = pipe.vae
    if not saved.vae_slicing:
        vae.disable_slicing()
    if not saved.vae_tiling:
        vae.disable_tiling()
    if level < MemoryLevel.OFFLOAD or level_in_effect(saved.model) >= MemoryLevel.OFFLOAD:
        return True
    pipe.remove_all_hooks()
    try:
        pipe.to(saved.model.device)
        return True
    except torch.OutOfMemoryError:
        pass
    pipe.enable_model_cpu_offload(device=saved.model.device)  # outside the except: its tensors are gone
    return False


def mark_offloaded(model: LoadedModel, why: str) -> None:
    """Record that ``model`` now runs with model CPU offload (not parkable, shown in the status line)."""
    model.plan = MemoryPlan("medvram", why)
    if OFFLOADED not in model.optimizations.savings:
        model.optimizations = replace(model.optimizations, savings=(*model.optimizations.savings, OFFLOADED))


@contextmanager
def lowered(models: Sequence[LoadedModel], level: MemoryLevel) -> Iterator[LoweredJob]:
    """Run the block with ``models``' pipelines at ``level``; put them back as they were afterwards."""
    job = LoweredJob(level)
    if level is MemoryLevel.NORMAL:
        yield job
        return
    saved = [_Saved.of(model) for model in models]
    try:
        for model in models:
            job.savings += [saving for saving in _apply(model, level) if saving not in job.savings]
        log.info("job runs with %s", job.label)
        yield job
    finally:
        for entry in reversed(saved):
            if not _restore(entry, level):
                job.kept_offloaded.append(entry.model)
        log.info("memory savings of the job undone%s", "" if not job.kept_offloaded else
                 f"; {len(job.kept_offloaded)} model(s) kept offloaded: no room on the device to take them back")
