"""The training metadata a LoRA file carries (kohya's ``ss_*`` keys), read from its safetensors header."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def file_metadata(path: Path) -> dict[str, Any]:
    """The header's ``__metadata__`` (JSON-looking values decoded), or {} for pickled or unreadable files."""
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
    except Exception:  # an unreadable file is listed with its problem elsewhere
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and value[:1] in "{[":
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out


def alias(name: str, metadata: dict[str, Any]) -> str:
    """A1111's LoRA alias: the name it was trained under (``ss_output_name``), else the file name."""
    value = metadata.get("ss_output_name")
    return value if isinstance(value, str) and value else name
