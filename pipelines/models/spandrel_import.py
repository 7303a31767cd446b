"""spandrel's architecture registry, with or without torchvision.

Facts (spandrel 0.4.2, the latest; every version back to 0.1.8 behaves the same):

- spandrel declares torchvision as a dependency, and ``import spandrel`` imports torchvision at package
  import time, but only through two architectures, neither of them an upscaler:
  ``architectures/RestoreFormer/__init__.py`` (face restoration, ``normalize``) and
  ``architectures/LaMa/__arch/LaMa.py`` (inpainting, ``rotate``/``InterpolationMode``).
- PyPI's torchvision wheels (0.28.0 pins torch==2.13.0) are CUDA builds whose ``_C.so`` links
  ``libtorch_cuda.so``. Next to the CPU torch, ``import torchvision`` fails ("operator torchvision::nms
  does not exist"), and an installed broken torchvision makes transformers believe torchvision is
  available, which breaks ``from diffusers import ...``. There is no sdist. So on CPU torchvision must
  not be installed, and spandrel is installed with ``--no-deps`` (requirements-nodeps.txt) plus its
  pure dependencies (einops; safetensors, numpy, typing_extensions).

What this module does:

- Where torchvision is importable (CUDA machines, or PyTorch's own CPU torchvision), it imports spandrel
  normally and uses ``spandrel.MAIN_REGISTRY``.
- Where torchvision is not installed, it registers the real ``spandrel`` package in ``sys.modules``
  from its own import spec *without executing* ``spandrel/__init__.py`` (``module_from_spec`` without
  ``exec_module``): the package object has spandrel's real ``__path__``, so its submodules import from
  the installed files exactly as spandrel ships them (they import each other as ``spandrel.util`` and
  relatively). It then imports ``spandrel.__helpers.registry`` and every architecture that does not
  need torchvision, and builds a public :class:`spandrel.ArchRegistry` of them, in spandrel's own
  detection order. No attribute of spandrel is replaced and no torchvision stand-in is created; the
  two torchvision architectures (RestoreFormer, LaMa) are simply absent.
  Side effect to know: in such a process ``import spandrel`` returns that package without its
  top-level re-exports (``spandrel.ModelLoader`` is missing); Atelier only uses :func:`load_spandrel`.

Everything spandrel-specific about this lives in this one module.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

# Architectures that import torchvision when their module is imported.
NEEDS_TORCHVISION = frozenset({"RestoreFormer", "LaMa"})

# spandrel 0.4.2's MAIN_REGISTRY order (detection runs in this order; some detectors are loose).
ARCHITECTURE_ORDER = (
    "Compact", "SwiftSRGAN", "HAT", "GRL", "Swin2SR", "SwinIR", "GFPGAN", "RestoreFormer", "LaMa", "OmniSR",
    "SCUNet", "FBCNN", "Uformer", "RGT", "DAT", "CRAFT", "KBNet", "DITN", "MMRealSR", "SPAN", "RealCUGAN",
    "SAFMN", "SAFMNBCIE", "DCTLSA", "FFTformer", "NAFNet", "ATD", "MixDehazeNet", "DRUNet", "DnCNN", "IPT",
    "DRCT", "ESRGAN", "PLKSR", "RetinexFormer", "HVICIDNet", "SeemoRe", "MoSR", "MoESR", "RCAN", "FDAT", "AuraSR",
)


@dataclass(frozen=True)
class Spandrel:
    """What Atelier uses from spandrel: an architecture registry and the state-dict canonicalizer."""

    registry: Any  # spandrel.ArchRegistry
    canonicalize: Any  # spandrel.canonicalize_state_dict
    unsupported_error: type[Exception]  # spandrel.UnsupportedModelError
    full: bool  # True: spandrel imported normally (MAIN_REGISTRY); False: the torchvision-free subset
    missing: tuple[str, ...] = ()  # architectures left out


def torchvision_installed() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def _full() -> Spandrel:
    import spandrel

    return Spandrel(spandrel.MAIN_REGISTRY, spandrel.canonicalize_state_dict, spandrel.UnsupportedModelError, True)


def _package_without_init() -> ModuleType:
    """The installed ``spandrel`` package object, its ``__init__`` not executed (see the module docstring)."""
    existing = sys.modules.get("spandrel")
    if existing is not None:
        return existing
    spec = importlib.util.find_spec("spandrel")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("spandrel is not installed (pip install --no-deps -r requirements-nodeps.txt)")
    package = importlib.util.module_from_spec(spec)
    sys.modules["spandrel"] = package
    return package


def _subset() -> Spandrel:
    _package_without_init()
    registry_mod = importlib.import_module("spandrel.__helpers.registry")
    canonical_mod = importlib.import_module("spandrel.__helpers.canonicalize")
    registry = registry_mod.ArchRegistry()
    for name in ARCHITECTURE_ORDER:
        if name in NEEDS_TORCHVISION:
            continue
        module = importlib.import_module(f"spandrel.architectures.{name}")
        arch = getattr(module, f"{name}Arch")()
        registry.add(registry_mod.ArchSupport.from_architecture(arch))
    return Spandrel(registry, canonical_mod.canonicalize_state_dict, registry_mod.UnsupportedModelError, False,
                    tuple(sorted(NEEDS_TORCHVISION)))


class SpandrelLoader:
    """Imports spandrel once, on first use (importing ~40 architectures takes a moment)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Spandrel | None = None

    def get(self) -> Spandrel:
        with self._lock:
            if self._value is None:
                self._value = self._import()
                if not self._value.full:
                    log.info("spandrel loaded without torchvision: %d architectures (left out: %s)",
                             len(self._value.registry), ", ".join(self._value.missing))
            return self._value

    @staticmethod
    def _import() -> Spandrel:
        if not torchvision_installed():
            return _subset()
        try:
            return _full()
        except (ImportError, RuntimeError) as exc:  # e.g. a CUDA torchvision next to a CPU torch
            log.warning("import spandrel failed (%s: %s); using the architectures that need no torchvision",
                        type(exc).__name__, exc)
            return _subset()
