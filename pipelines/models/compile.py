"""Speed settings applied once per loaded model: channels-last, fused QKV projections and torch.compile.

- ``--channels-last``: the UNet and the VAE in ``torch.channels_last`` (convolutions read NHWC).
- ``--compile``: ``Module.compile`` (in place, so every per-job pipeline view shares the compiled module) of
  the UNet and the VAE decoder, with ``--compile-mode`` (auto: ``max-autotune`` on CUDA, which adds CUDA
  graphs, ``default`` elsewhere), after fusing the attention's Q/K/V projections (diffusers'
  ``fuse_qkv_projections``) where the model runs plain SDPA attention. Only the modules are compiled: the
  sampler loop, the scheduler and the step callback stay eager, so the callback (progress, previews,
  interrupt) causes no graph break. torch.compile is lazy: the first job at a size compiles (logged with
  its time by :func:`timed_first_call`); a new size or batch size compiles again, which is expected.
- Inductor needs a C++ compiler (CPU kernels; triton's launcher on CUDA). Without one the model runs eager
  with a message saying what to install, instead of failing on the first job.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)

COMPILED_SIZES = "compiled_sizes"  # LoadedModel.extras key: the (width, height, batch) a compiled model has run at


@dataclass(frozen=True)
class SpeedReport:
    """What :func:`apply_speed_settings` did, for the model's optimization line."""

    applied: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    compiled: bool = False


def compile_mode(requested: str, device: torch.device) -> str:
    """``--compile-mode``: ``auto`` is ``max-autotune`` (CUDA graphs) on CUDA, ``default`` elsewhere."""
    if requested != "auto":
        return requested
    return "max-autotune" if device.type == "cuda" else "default"


def compiler_problem(device: torch.device, backend: str = "inductor") -> str | None:
    """Why torch.compile with ``backend`` cannot run for ``device`` here, or None when it can. Only inductor builds
    kernels (a C++ compiler; triton on CUDA); ``eager`` traces and runs the graphs with eager kernels, and
    ``cudagraphs`` records eager kernels into CUDA graphs."""
    if backend == "cudagraphs" and device.type != "cuda":
        return "the cudagraphs backend needs a CUDA device"
    if backend != "inductor":
        return None
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        return (f"torch.compile needs a C++ compiler ({cxx!r} is not on PATH; install g++ or set CXX)")
    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "torch.compile on CUDA needs triton (pip install triton)"
    if device.type not in ("cpu", "cuda"):
        return f"torch.compile is not set up for {device.type} here"
    return None


def _fused(module: Any) -> bool:
    processors = getattr(module, "attn_processors", None) or {}
    return any(type(p).__name__.startswith("Fused") for p in processors.values())


def fuse_qkv(pipe: Any) -> list[str]:
    """Fuse the attention projections of the UNet and VAE (one matmul for Q, K and V); the names fused."""
    fused = []
    for name in ("unet", "vae"):
        module = getattr(pipe, name, None)
        if module is None or not hasattr(module, "fuse_qkv_projections"):
            continue
        try:
            module.fuse_qkv_projections()
        except ValueError as exc:  # added K/V projections (SD x4 upscaler): diffusers cannot fuse them
            log.info("%s: QKV projections left unfused (%s)", name, exc)
            continue
        fused.append(name)
    return fused


@contextmanager
def unfused_qkv(pipe: Any) -> Iterator[None]:
    """The UNet with separate Q/K/V projections for one job (LoRA layers go into ``to_q``/``to_k``/``to_v``,
    which the fused projection would skip), fused again after it.

    The fused processors and ``to_qkv`` layers are put back as they were (LoRAs are never merged into the
    weights, so they still hold the originals): the graph compiled before the job fits again, and only the
    LoRA job itself recompiles."""
    unet = getattr(pipe, "unet", None)
    if unet is None or not _fused(unet):
        yield
        return
    fused = dict(unet.attn_processors)
    unet.unfuse_qkv_projections()
    try:
        yield
    finally:
        unet.set_attn_processor(fused)


def _upcast_per_decode(pipe: Any, vae: Any) -> bool:
    """SDXL pipelines move an fp16 VAE with ``force_upcast`` to fp32 for each decode and back: new parameter
    tensors every job, which a compiled decoder (CUDA graphs above all) would recompile or re-record each time."""
    return (hasattr(pipe, "upcast_vae") and getattr(vae, "dtype", None) == torch.float16
            and bool(getattr(vae.config, "force_upcast", False)))


def apply_speed_settings(pipe: Any, *, channels_last: bool, compile: bool, mode: str, device: torch.device,
                         plain_attention: bool, backend: str = "inductor") -> SpeedReport:
    """``--channels-last`` and ``--compile`` on one loaded pipeline (``plain_attention``: SDPA, no slicing,
    no offload, the only case where fused projections and compiled modules are safe)."""
    applied: list[str] = []
    notes: list[str] = []
    modules = [m for m in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)) if isinstance(m, torch.nn.Module)]
    if channels_last and modules:
        for module in modules:
            module.to(memory_format=torch.channels_last)
        applied.append("channels-last")
    if not compile:
        return SpeedReport(tuple(applied), tuple(notes))
    problem = compiler_problem(device, backend)
    if problem is None and not plain_attention:
        problem = "torch.compile runs with plain SDPA attention only (no offload, slicing or xformers)"
    if problem is not None:
        log.warning("%s; running eager", problem)
        return SpeedReport(tuple(applied), (*notes, f"{problem}; running eager"))
    chosen = compile_mode(mode, device)
    how: dict[str, Any] = {"mode": chosen} if backend == "inductor" else {"backend": backend}  # modes are inductor's
    label = f"torch.compile ({chosen})" if backend == "inductor" else f"torch.compile ({backend})"
    fused = fuse_qkv(pipe)
    unet = getattr(pipe, "unet", None)
    if isinstance(unet, torch.nn.Module):
        unet.compile(**how)
    vae = getattr(pipe, "vae", None)
    if vae is not None and _upcast_per_decode(pipe, vae):
        notes.append("VAE decoder not compiled: diffusers casts it to fp32 and back for every decode (SDXL in fp16)")
        vae = None
    if vae is not None and isinstance(getattr(vae, "decoder", None), torch.nn.Module):
        vae.decoder.compile(**how)
    applied.append(label)
    if fused:
        applied.append("fused QKV")
    log.info("%s set up for %s; each new size compiles on its first job", label,
             " and ".join(n for n, m in (("UNet", unet), ("VAE decoder", vae)) if m is not None))
    return SpeedReport(tuple(applied), tuple(notes), compiled=True)


@contextmanager
def timed_first_call(extras: dict[str, Any], key: tuple[int, ...], name: str) -> Iterator[None]:
    """Log how long the first job at ``key`` (width, height, batch) took on a compiled model: that job compiles.
    Does nothing for a model that is not compiled (no :data:`COMPILED_SIZES` in its ``extras``)."""
    seen = extras.get(COMPILED_SIZES)
    if seen is None or key in seen:
        yield
        return
    started = time.perf_counter()
    yield
    seen.add(key)
    log.info("%s compiled for %s in %.1f s (first job at this size, sampling included)", name,
             "x".join(map(str, key)), time.perf_counter() - started)
