"""Which dtype the models run in: ``--precision auto|fp32|bf16|fp16`` (and A1111's ``full|half|autocast``).

``auto`` picks fp16 on CUDA/MPS (unless ``--no-half``), bf16 on a CPU with native bf16 instructions
(AVX512-BF16 or AMX, or oneDNN's bf16 path on AVX512 cores), fp32 otherwise. A CPU without them (AVX2
only) runs bf16 matrix products in slow emulation (about 400x slower than fp32 on an AVX2 EPYC), so
``auto`` never picks bf16 there; ``--precision bf16`` still forces it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipelines.settings import PrecisionName

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_native_bf16() -> str | None:
    """What gives this CPU fast bf16 (``"AMX"``, ``"AVX512-BF16"``, ``"oneDNN bf16 (AVX512)"``), or None.

    Asked of the torch build itself (its CPU feature probes), so the answer is the one its kernels act on.
    """
    probes = (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported"))
    for label, probe in probes:
        check = getattr(torch.cpu, probe, None)
        if check is not None and check():
            return label
    mkldnn_check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        if mkldnn_check is not None and bool(mkldnn_check()):
            return "oneDNN bf16 (AVX512)"
    except RuntimeError:  # a torch built without oneDNN
        return None
    return None


def cpu_capability() -> str:
    """The vector instruction set torch's CPU kernels use here (``"AVX2"``, ``"AVX512"``, ...)."""
    get = getattr(torch.backends.cpu, "get_cpu_capability", None)
    return str(get()) if get is not None else "unknown"


@dataclass(frozen=True)
class PrecisionChoice:
    """The dtype the models run in, the ``--precision`` it came from and why, for logs and the Settings tab."""

    dtype: torch.dtype
    requested: PrecisionName
    reason: str

    @property
    def label(self) -> str:
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def describe(self) -> str:
        return f"{self.label} ({self.requested}: {self.reason})"


def choose_precision(device: torch.device, precision: PrecisionName, *, no_half: bool = False) -> PrecisionChoice:
    """The dtype for ``device`` under ``--precision`` and ``--no-half``."""
    if precision != "auto":
        return PrecisionChoice(DTYPES[precision], precision, "asked for")
    if device.type in ("cuda", "mps"):
        if no_half:
            return PrecisionChoice(torch.float32, "auto", "--no-half")
        return PrecisionChoice(torch.float16, "auto", f"half precision on {device.type}")
    if no_half:
        return PrecisionChoice(torch.float32, "auto", "--no-half")
    native = cpu_native_bf16()
    if native is not None:
        return PrecisionChoice(torch.bfloat16, "auto", f"CPU with {native}")
    return PrecisionChoice(torch.float32, "auto", f"CPU without native bf16 ({cpu_capability()})")
