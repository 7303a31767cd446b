"""Memory accounting in bytes: what a model weighs, what a device has free.

Every decision (cache budget, eviction, offload) is made from these numbers and
logged with them, in the manner of ComfyUI's model_management.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psutil
import torch

log = logging.getLogger(__name__)
GIB = 1 << 30


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes held by a module's parameters and buffers."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.nelement() * t.element_size() for t in tensors)


def pipeline_bytes(components: dict[str, object]) -> int:
    return sum(module_bytes(c) for c in components.values() if isinstance(c, torch.nn.Module))


def ram_free_bytes() -> int:
    return psutil.virtual_memory().available


def ram_total_bytes() -> int:
    return psutil.virtual_memory().total


def vram_free_total(device: torch.device) -> tuple[int, int]:
    """(free, total) bytes on a CUDA device; (0, 0) elsewhere."""
    if device.type != "cuda":
        return 0, 0
    free, total = torch.cuda.mem_get_info(device)
    return int(free), int(total)


def fmt(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / (1 << 20):.1f} MiB"


@dataclass(frozen=True)
class MemoryPlan:
    """How a model is placed: which savings are on and why."""

    mode: str  # normal | medvram | lowvram
    reason: str


# Activations of one SD step at 512x512 in fp16 take about 1-2 GiB; keep that headroom.
ACTIVATION_HEADROOM = int(1.5 * GIB)


def plan_memory(requested: str, device: torch.device, model_bytes: int) -> MemoryPlan:
    """Pick normal / medvram / lowvram: honour the flag, else decide from free VRAM."""
    if requested != "auto":
        return MemoryPlan(requested, f"--{requested}" if requested != "normal" else "requested")
    if device.type != "cuda":
        return MemoryPlan("normal", f"{device.type}: weights stay in RAM")
    free, total = vram_free_total(device)
    if model_bytes + ACTIVATION_HEADROOM <= free:
        return MemoryPlan("normal", f"model {fmt(model_bytes)} + headroom fits in {fmt(free)} free VRAM")
    if model_bytes // 2 + ACTIVATION_HEADROOM <= free:
        why = f"model {fmt(model_bytes)} does not fit in {fmt(free)} free VRAM; offloading per model"
        return MemoryPlan("medvram", why)
    return MemoryPlan("lowvram", f"only {fmt(free)} of {fmt(total)} VRAM free; offloading per layer")
