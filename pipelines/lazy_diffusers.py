"""Deferred, thread-safe access to diffusers.

``import diffusers`` takes seconds, so it happens on first use (or in a
background warm-up after the page is served). diffusers resolves names lazily
on attribute access, which is not safe while another thread is still importing
it, so every lookup goes through one lock.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

_IMPORT_LOCK = threading.Lock()  # guards diffusers' lazy attribute resolution across threads


def diffusers_attr(name: str, module: str = "diffusers") -> Any:
    """``getattr(import_module(module), name)``, serialized across threads."""
    with _IMPORT_LOCK:
        return getattr(importlib.import_module(module), name)


WARM_UP_NAMES = (
    ("diffusers", "StableDiffusionPipeline"),
    ("diffusers", "StableDiffusionXLPipeline"),
    ("diffusers", "StableDiffusionInpaintPipeline"),
    ("diffusers", "EulerAncestralDiscreteScheduler"),
    ("diffusers.models.attention_processor", "AttnProcessor2_0"),
    ("transformers", "CLIPTextModel"),
    ("transformers", "CLIPTokenizer"),
)


def warm_up() -> None:
    """Import what the first Generate needs, holding the lock throughout so a request
    arriving meanwhile waits for a fully imported diffusers instead of racing it."""
    with _IMPORT_LOCK:
        for module, name in WARM_UP_NAMES:
            getattr(importlib.import_module(module), name)
