"""What a safetensors file says about itself without reading any weight: its tensor names and metadata.

The header is the file's first bytes: an 8-byte little-endian length, then that many bytes of JSON
naming every tensor, with the free-form ``__metadata__`` strings (SAI ``modelspec.*``, kohya ``ss_*``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the format's own limit


@dataclass(frozen=True)
class SafetensorsHeader:
    keys: frozenset[str] = frozenset()
    metadata: dict[str, str] = field(default_factory=dict)


def read_header(path: Path) -> SafetensorsHeader:
    """The tensor names and ``__metadata__`` of a ``.safetensors`` file; an empty header for anything else."""
    if path.suffix.lower() != ".safetensors":
        return SafetensorsHeader()
    try:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > MAX_HEADER_BYTES:
                return SafetensorsHeader()
            data = json.loads(fh.read(length))
    except (OSError, ValueError, struct.error):
        return SafetensorsHeader()
    if not isinstance(data, dict):
        return SafetensorsHeader()
    metadata = data.pop("__metadata__", None)
    metadata = {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
    return SafetensorsHeader(frozenset(data), metadata)
