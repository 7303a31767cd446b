"""Attention and memory savings, applied through diffusers' public APIs only.

PyTorch SDPA by default; xformers on CUDA when installed and asked for;
attention slicing, VAE tiling/slicing and CPU offload for medvram/lowvram.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

import torch

from pipelines.lazy_diffusers import diffusers_attr
from pipelines.models.memory import MemoryPlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OptimizationReport:
    """What was applied to a loaded pipeline, for logs and the UI."""

    attention: str
    savings: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        parts = [self.attention, *self.savings]
        return ", ".join(parts) + ("" if not self.notes else f" ({'; '.join(self.notes)})")


def xformers_available() -> bool:
    return importlib.util.find_spec("xformers") is not None


def _set_processor(pipe, processor_factory) -> None:
    for name in ("unet", "vae"):
        module = getattr(pipe, name, None)
        if module is not None and hasattr(module, "set_attn_processor"):
            module.set_attn_processor(processor_factory())


def apply_optimizations(pipe, *, attention: str, plan: MemoryPlan, device: torch.device) -> OptimizationReport:
    """Pick the attention implementation and memory savings for one loaded pipeline."""
    notes: list[str] = []
    chosen = "PyTorch SDPA"
    if attention == "xformers":
        if device.type == "cuda" and xformers_available():
            pipe.enable_xformers_memory_efficient_attention()
            chosen = "xformers"
        else:
            why = "not installed" if device.type == "cuda" else f"needs CUDA, running on {device.type}"
            notes.append(f"xformers {why}; using SDPA")
    if chosen == "PyTorch SDPA":
        _set_processor(pipe, diffusers_attr("AttnProcessor2_0", "diffusers.models.attention_processor"))
    savings: list[str] = []
    if attention == "sliced" or plan.mode in ("medvram", "lowvram"):
        pipe.enable_attention_slicing()
        chosen = "sliced attention" if attention == "sliced" else chosen
        savings.append("attention slicing")
    if plan.mode in ("medvram", "lowvram") and getattr(pipe, "vae", None) is not None:  # pixel-space: no VAE
        pipe.vae.enable_slicing()
        pipe.vae.enable_tiling()
        savings += ["VAE slicing", "VAE tiling"]
        if device.type == "cuda":
            if plan.mode == "medvram":
                pipe.enable_model_cpu_offload(device=device)
                savings.append("model CPU offload")
            else:
                pipe.enable_sequential_cpu_offload(device=device)
                savings.append("sequential CPU offload")
        else:
            notes.append("CPU offload needs an accelerator")
    report = OptimizationReport(chosen, tuple(savings), tuple(notes))
    log.info("optimizations (%s: %s): %s", plan.mode, plan.reason, report.summary())
    return report
