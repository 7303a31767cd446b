"""Which torch device and dtype to run on."""

from __future__ import annotations

import torch

from pipelines.settings import Settings


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was given but PyTorch sees no CUDA device")
    return torch.device(name)


def resolve_dtype(device: torch.device, settings: Settings) -> torch.dtype:
    """fp16 on accelerators (unless --no-half), fp32 on CPU."""
    if device.type in ("cuda", "mps") and not settings.no_half:
        return torch.float16
    return torch.float32
