"""Is a model still whole on disk? Cheap checks that read file sizes and safetensors headers, never the weights.

A ``.safetensors`` file is an 8-byte little-endian header length, that many bytes of JSON giving each tensor's
``data_offsets`` (start, end) in the data that follows, then the data. A file shorter than the header's largest
end was cut short (an interrupted download or copy); one whose first bytes are no such header is not a
safetensors file at all (an HTML error page saved under the model's name). Both are caught here, naming the file
and the sizes, so the user knows to download it again, before diffusers or safetensors meet them. A pickled
file (``--allow-pickle``) in PyTorch's zip format is checked for the zip directory that ends a whole file.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

from pipelines.errors import DamagedModelError, ModelNotFoundError
from pipelines.models.header import MAX_HEADER_BYTES
from pipelines.models.refs import ModelRecord, SourceKind

AGAIN = "download it again"


def size_text(n: int) -> str:
    """Bytes as people read them: 1.21 GiB, 300.0 MiB, 12.5 KiB, 40 bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.{2 if unit == 'GiB' else 1}f} {unit}"
    return f"{n} bytes"


def safetensors_damage(path: Path, label: str | None = None) -> str | None:
    """Why the ``.safetensors`` file ``path`` cannot be whole (named ``label``, else its file name), or None."""
    name = label or path.name
    not_safetensors = f"{name} is not a safetensors file ({{}}); it may be an error page saved under its name: {AGAIN}"
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return not_safetensors.format(f"it has only {size_text(size)}")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES:
                return not_safetensors.format("its first bytes are no safetensors header")
            if 8 + length > size:
                return (f"{name} is damaged or cut short (its header alone should be {size_text(length)}, the file "
                        f"has {size_text(size)}); {AGAIN}")
            header = json.loads(fh.read(length))
    except OSError as exc:
        return f"{name} cannot be read ({exc.strerror or exc})"
    except ValueError:
        return not_safetensors.format("its header is not JSON")
    if not isinstance(header, dict):
        return not_safetensors.format("its header is not a JSON object")
    offsets = [entry.get("data_offsets") if isinstance(entry, dict) else None
               for key, entry in header.items() if key != "__metadata__"]
    ends = [pair[1] if isinstance(pair, list) and len(pair) == 2 else None for pair in offsets]
    if not all(isinstance(end, int) for end in ends):
        return not_safetensors.format("its header has no valid data offsets")
    needed, have = max(ends, default=0), size - 8 - length
    if have < needed:
        return (f"{name} is damaged or cut short (its header says {size_text(needed)} of tensors, the file has "
                f"{size_text(have)}); {AGAIN}")
    if have > needed:
        return f"{name} is damaged ({size_text(have - needed)} more than its header describes); {AGAIN}"
    return None


def pickle_damage(path: Path) -> str | None:
    """Why a PyTorch zip-format pickle (``torch.save``'s format since 1.6) cannot be whole, or None (also for
    the older plain-pickle format, which has no cheap check)."""
    try:
        with path.open("rb") as fh:
            if fh.read(2) != b"PK":
                return None
        if zipfile.is_zipfile(path):
            return None
    except OSError as exc:
        return f"{path.name} cannot be read ({exc.strerror or exc})"
    return f"{path.name} is damaged or cut short (the zip directory that ends a whole file is missing); {AGAIN}"


def folder_damage(folder: Path, name: str) -> str | None:
    """The first damaged weights file of a diffusers folder: its components' (one level down) for a pipeline, its
    own for a one-model folder (a VAE); the plain files, or the ``.fp16.`` ones where a folder has only those
    (what diffusers loads)."""
    pipeline = (folder / "model_index.json").exists()
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()) if pipeline else [folder]:
        files = sorted(sub.glob("*.safetensors"))
        plain = [f for f in files if ".fp16." not in f.name]
        for file in plain or files:
            problem = safetensors_damage(file, f"{name}/{file.relative_to(folder).as_posix()}")
            if problem:
                return problem
    return None


def check_on_disk(record: ModelRecord) -> None:
    """Raise :class:`ModelNotFoundError` for a listed model whose files are gone, :class:`DamagedModelError`
    for one whose weights are cut short or not what their name says (safetensors; zip-format pickles)."""
    path = record.path
    if path is None or not record.installed:
        return
    if not path.exists():
        raise ModelNotFoundError(f"{record.name} is no longer on disk ({path}): it was deleted or moved; press "
                                 "Refresh beside the list to update it")
    if path.is_dir():
        problem = folder_damage(path, record.name)
    elif path.suffix.lower() == ".safetensors":
        problem = safetensors_damage(path)
    else:
        problem = pickle_damage(path)
    if problem and record.ref.kind is SourceKind.HUB:  # selecting it again would find the same cached copy
        cached = next((p for p in path.parents if p.name.startswith("models--")), path)
        problem += f" (the damaged copy is in the Hugging Face cache: delete {cached}, then select it again)"
    if problem:
        raise DamagedModelError(problem)

