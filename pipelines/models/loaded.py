"""A model in memory: what was loaded, from which record, and how the cache measures and moves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from pipelines.models.attention import OptimizationReport
from pipelines.models.memory import MemoryPlan
from pipelines.models.refs import ModelRecord


def _modules(value: Any) -> list[torch.nn.Module]:
    """The torch modules inside a pipeline, a spandrel descriptor or a module."""
    if isinstance(value, torch.nn.Module):
        return [value]
    components = getattr(value, "components", None)
    if isinstance(components, dict):
        return [c for c in components.values() if isinstance(c, torch.nn.Module)]
    model = getattr(value, "model", None)  # spandrel's ImageModelDescriptor
    return [model] if isinstance(model, torch.nn.Module) else []


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, dict):
        return [t for t in value.values() if isinstance(t, torch.Tensor)]
    out: list[torch.Tensor] = []
    for module in _modules(value):
        out += list(module.parameters()) + list(module.buffers())
    return out


def storages(value: Any) -> dict[int, int]:
    """Bytes per tensor storage (pointer -> bytes): modules shared by two values count once."""
    out: dict[int, int] = {}
    for tensor in _tensors(value):
        if tensor.device.type == "meta":
            continue
        storage = tensor.untyped_storage()
        out[storage.data_ptr() or id(storage)] = storage.nbytes()
    return out


@dataclass
class LoadedModel:
    """Any kind of model in memory: a diffusers pipeline, a VAE, a spandrel upscaler, a LoRA's tensors."""

    record: ModelRecord
    model: Any
    device: torch.device
    dtype: torch.dtype
    plan: MemoryPlan = field(default_factory=lambda: MemoryPlan("normal", "default"))
    optimizations: OptimizationReport = field(default_factory=lambda: OptimizationReport("n/a", ()))
    extras: dict[str, Any] = field(default_factory=dict)  # per-model derived data (e.g. preview decoder)

    @property
    def pipeline(self) -> Any:
        """The diffusers pipeline of a checkpoint (the same object as :attr:`model`)."""
        return self.model

    # ---- what the cache needs (pipelines.models.cache.Cacheable) ------------------------------
    def storages(self) -> dict[int, int]:
        return storages(self.model)

    @property
    def parkable(self) -> bool:
        """Whole-model placement only: offload hooks (medvram/lowvram) manage their own memory."""
        return self.plan.mode == "normal"

    @property
    def wants_device(self) -> bool:
        """LoRAs and embeddings stay in RAM; jobs copy what they need to the device."""
        return not self.record.type.small

    def move_to(self, device: torch.device) -> None:
        if isinstance(self.model, dict):
            self.model = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.model.items()}
        elif hasattr(self.model, "to"):
            self.model.to(device)
        self.device = device
