"""Reading weight files safely, and loading an upscaler file with spandrel.

``.safetensors`` files are always read; pickled ``.pth``/``.pt`` files only with ``allow_pickle`` and
then with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from pipelines.errors import DamagedModelError, UnsafeFormatError, UnsupportedModelError
from pipelines.models.spandrel_import import Spandrel

log = logging.getLogger(__name__)


def read_state_dict(path: Path, *, allow_pickle: bool) -> dict[str, Any]:
    """All tensors of a weights file, on the CPU; pickled files only with ``allow_pickle`` (weights only)."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except SafetensorError as exc:  # changed since it was checked: the library's word, with the file's name
            raise DamagedModelError(f"{path.name} cannot be read as safetensors ({exc}); download it again") from exc
    if not allow_pickle:
        raise UnsafeFormatError(f"{path.name} is a pickled file; convert it to .safetensors or start Atelier "
                                "with --allow-pickle to load it (weights only)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses code objects; a corrupt file fails too
        raise UnsupportedModelError(f"{path.name}: cannot be read as plain weights ({exc})") from exc
    if not isinstance(state, dict):
        raise UnsupportedModelError(f"{path.name}: holds a {type(state).__name__}, not a state dict")
    return state


def load_descriptor(path: Path, spandrel: Spandrel, *, device: torch.device, dtype: torch.dtype,
                    allow_pickle: bool) -> Any:
    """A spandrel ``ImageModelDescriptor`` for ``path``, in eval mode on ``device``."""
    started = time.perf_counter()
    state = read_state_dict(path, allow_pickle=allow_pickle)
    try:
        descriptor = spandrel.registry.load(spandrel.canonicalize(state))
    except spandrel.unsupported_error as exc:
        raise UnsupportedModelError(f"{path.name}: not an upscaler architecture spandrel knows") from exc
    if getattr(descriptor, "purpose", None) not in ("SR", "Restoration"):
        raise UnsupportedModelError(f"{path.name}: a {descriptor.architecture.id} model "
                                    f"({descriptor.purpose}), not an upscaler")
    if dtype == torch.float16 and not descriptor.supports_half:
        dtype = torch.float32
    descriptor.to(device=device, dtype=dtype).eval()
    log.info("upscaler %s loaded: %s x%d on %s (%s) in %.2fs", path.name, descriptor.architecture.id,
             descriptor.scale, device, dtype, time.perf_counter() - started)
    return descriptor
