"""Lower-memory modes for one job, applied to the held pipelines through diffusers' public APIs and undone after.

- ``SLICED``: attention computed in slices, the VAE decoding one image at a time, in tiles;
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
        return {0: "no memory savings", 1: "attention slicing and VAE tiling",
                2: "attention slicing, VAE tiling and model CPU offload"}[self.value]


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
    """The mode a job runs in; ``kept_offloaded`` lists the models that could not go back to their device."""

    level: MemoryLevel
    kept_offloaded: list[LoadedModel] = field(default_factory=list)


def _apply(model: LoadedModel, level: MemoryLevel) -> None:
    pipe = model.pipeline
    pipe.enable_attention_slicing()
    pipe.vae.enable_slicing()
    pipe.vae.enable_tiling()
    if level >= MemoryLevel.OFFLOAD and level_in_effect(model) < MemoryLevel.OFFLOAD:
        pipe.enable_model_cpu_offload(device=model.device)


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
            _apply(model, level)
        log.info("job runs with %s", level.label)
        yield job
    finally:
        for entry in reversed(saved):
            if not _restore(entry, level):
                job.kept_offloaded.append(entry.model)
        log.info("memory savings of the job undone%s", "" if not job.kept_offloaded else
                 f"; {len(job.kept_offloaded)} model(s) kept offloaded: no room on the device to take them back")
