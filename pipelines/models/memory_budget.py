"""How many bytes the model cache may hold on each tier, decided from free memory at the time.

The budget is not a figure fixed at start-up: each time a model is about to be loaded or brought
back, the cache asks for the memory free *now* and adds what it already holds itself (that memory
would be free if it let go), less a headroom for activations, capped by an optional fixed limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import torch

from pipelines.models.memory import ACTIVATION_HEADROOM, GIB, ram_free_bytes, ram_total_bytes, vram_free_total


class Tier(StrEnum):
    DEVICE = "device"  # where models run: VRAM on an accelerator, RAM on a CPU
    RAM = "ram"  # models parked off the accelerator, ready to come back without reading the disk


class MemoryProbe(Protocol):
    """Free and total bytes of a tier right now."""

    def free_bytes(self, tier: Tier) -> int: ...

    def total_bytes(self, tier: Tier) -> int: ...


@dataclass(frozen=True)
class SystemMemory:
    """The machine's memory: the device's (CUDA) or the process's RAM (CPU), and RAM for parking."""

    device: torch.device

    def _uses_vram(self, tier: Tier) -> bool:
        return tier is Tier.DEVICE and self.device.type == "cuda"

    def free_bytes(self, tier: Tier) -> int:
        return vram_free_total(self.device)[0] if self._uses_vram(tier) else ram_free_bytes()

    def total_bytes(self, tier: Tier) -> int:
        return vram_free_total(self.device)[1] if self._uses_vram(tier) else ram_total_bytes()


@dataclass(frozen=True)
class TierLimits:
    """What a tier keeps back and the most it may ever hold (``None``: as much as is free)."""

    headroom_bytes: int
    cap_bytes: int | None = None


@dataclass(frozen=True)
class Budget:
    """One budget decision with the numbers it came from (logged as they are)."""

    tier: Tier
    budget_bytes: int
    free_bytes: int
    held_bytes: int
    headroom_bytes: int
    cap_bytes: int | None

    def explain(self) -> str:
        from pipelines.models.memory import fmt

        cap = f", cap {fmt(self.cap_bytes)}" if self.cap_bytes is not None else ""
        return (f"{self.tier} budget {fmt(self.budget_bytes)} = free {fmt(self.free_bytes)} + held by cache "
                f"{fmt(self.held_bytes)} - headroom {fmt(self.headroom_bytes)}{cap}")


class BudgetPolicy:
    """Turns free memory into a byte budget per tier."""

    def __init__(self, probe: MemoryProbe, limits: dict[Tier, TierLimits]) -> None:
        self.probe = probe
        self.limits = limits

    def budget(self, tier: Tier, held_bytes: int) -> Budget:
        limits = self.limits[tier]
        free = self.probe.free_bytes(tier)
        budget = max(0, free + held_bytes - limits.headroom_bytes)
        if limits.cap_bytes is not None:
            budget = min(budget, limits.cap_bytes)
        return Budget(tier, budget, free, held_bytes, limits.headroom_bytes, limits.cap_bytes)


def default_limits(*, two_tier: bool, device_cap: int | None, ram_cap: int | None) -> dict[Tier, TierLimits]:
    """Headroom for activations on the device; 1 GiB (or a tenth of RAM, if less) kept free in RAM.

    On one tier (a CPU) the device *is* RAM, so it keeps both back.
    """
    ram_reserve = min(GIB, ram_total_bytes() // 10)
    if not two_tier:
        return {Tier.DEVICE: TierLimits(ram_reserve + ACTIVATION_HEADROOM // 2, device_cap)}
    return {Tier.DEVICE: TierLimits(ACTIVATION_HEADROOM, device_cap), Tier.RAM: TierLimits(ram_reserve, ram_cap)}
