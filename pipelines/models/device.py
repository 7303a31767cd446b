"""Which torch device and dtype to run on."""

from __future__ import annotations

import torch

from pipelines.models.precision import PrecisionChoice, choose_precision
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


def resolve_precision(device: torch.device, settings: Settings) -> PrecisionChoice:
    """``--precision`` and ``--no-half`` on ``device`` (see :mod:`pipelines.models.precision`)."""
    return choose_precision(device, settings.precision, no_half=settings.no_half)


def resolve_dtype(device: torch.device, settings: Settings) -> torch.dtype:
    """fp16 on accelerators (unless --no-half), bf16 on a CPU with native bf16, else fp32; or what --precision asks."""
    return resolve_precision(device, settings).dtype
