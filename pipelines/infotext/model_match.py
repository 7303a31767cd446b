"""Which installed model an infotext names (``Model hash``, ``Model``, ``Lora hashes``).

A checkpoint is looked up as A1111 does: its title ``name [hash]`` first, then the
hash alone (a renamed file), then the name alone. Hashes are the first 10 hex
digits of the file's sha256, or A1111's legacy 8-digit hash (sha256 of the 64 KiB
at 1 MiB) in images from before late 2022. Nothing here hashes a whole file: a
model's sha256 is known once it was loaded (this run or an earlier one, through
``cache.json``); the legacy hash reads 64 KiB.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.models.refs import ModelRecord, SourceKind

if TYPE_CHECKING:
    from pipelines.models.store import ModelStore

HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HEX = re.compile(r"^[0-9a-fA-F]{8,64}$")
_LORA_TAG = re.compile(r"<lora:([^:>]+)(?::[^>]*)?>")
LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")


@dataclass(frozen=True)
class ModelMatch:
    """The outcome of looking up a model an image names."""

    found: bool
    name: str | None = None  # the installed model to select (its registry name)
    wanted_name: str | None = None
    wanted_hash: str | None = None
    message: str = ""  # for the user; empty when the image names no model
    hub_repo_id: str | None = None  # a Hub repo id the missing model can be downloaded from
    kind: str = "checkpoint"  # or "LoRA"

    @property
    def missing(self) -> bool:
        """The image names a model that is not installed."""
        return not self.found and bool(self.wanted_name or self.wanted_hash)


def legacy_hash(path: Path) -> str:
    """A1111's pre-2023 "Model hash": sha256 of the 64 KiB at offset 1 MiB, 8 hex digits."""
    with path.open("rb") as fh:
        fh.seek(0x100000)
        return hashlib.sha256(fh.read(0x10000)).hexdigest()[:8]


def _label(name: str | None, hash_: str | None) -> str:
    return " ".join(part for part in (name, f"[{hash_}]" if hash_ else None) if part)


def _hash_matches(store: ModelStore, record: ModelRecord, wanted: str) -> bool:
    sha256 = store.known_sha256(record)
    if sha256 and sha256.startswith(wanted):
        return True
    if len(wanted) == 8 and record.ref.kind is SourceKind.SINGLE_FILE and record.path and record.path.is_file():
        return legacy_hash(record.path) == wanted
    return False


def _missing(wanted_name: str | None, wanted_hash: str | None, folder: str, kind: str) -> ModelMatch:
    label = _label(wanted_name, wanted_hash)
    what = "LoRA " if kind == "LoRA" else ""
    message = (f"This image was made with {what}{label}; it is not installed. "
               f"Put it in models/{folder} or download it from the Hub")
    repo = wanted_name if kind == "checkpoint" and wanted_name and HUB_REPO_ID.match(wanted_name) else None
    if repo:
        message += f": it looks like the Hub repo {repo}, which can be downloaded"
    return ModelMatch(False, None, wanted_name, wanted_hash, message + ".", repo, kind)


def match_checkpoint(store: ModelStore, wanted_name: str | None, wanted_hash: str | None) -> ModelMatch:
    """Find the installed checkpoint an image names; a missing one gets a message saying so."""
    wanted_name = (wanted_name or "").strip() or None
    wanted_hash = (wanted_hash or "").strip().lower() or None
    if wanted_hash and not _HEX.match(wanted_hash):
        wanted_hash = None
    if not wanted_name and not wanted_hash:
        return ModelMatch(False)
    usable = [r for r in store.checkpoints() if r.installed and not r.problem]
    by_hash = [r for r in usable if wanted_hash and _hash_matches(store, r, wanted_hash)]
    by_name = [r for r in usable if wanted_name and r.name == wanted_name]
    by_name = by_name or [r for r in usable if wanted_name and r.name.lower() == wanted_name.lower()]
    both = [r for r in by_hash if r in by_name]
    record = (both or by_hash or by_name or [None])[0]
    if record is None:
        broken = [r for r in store.checkpoints() if r.problem and wanted_name and r.name == wanted_name]
        if broken:
            return ModelMatch(False, None, wanted_name, wanted_hash, f"{broken[0].name}: {broken[0].problem}")
        return _missing(wanted_name, wanted_hash, "Stable-diffusion", "checkpoint")
    message = f"Model: {record.title}"
    sha256 = store.known_sha256(record)
    if wanted_hash and record not in by_hash and sha256:
        message += (f" — the image names hash {wanted_hash}, this file has {sha256[:len(wanted_hash)]}; "
                    "the result may differ")
    elif wanted_name and record not in by_name:
        message += f" (found by its hash; the image calls it {wanted_name})"
    return ModelMatch(True, record.name, wanted_name, wanted_hash, message)


def lora_names(params: Mapping[str, str]) -> dict[str, str | None]:
    """LoRAs an infotext names: ``Lora hashes`` ("name: hash, ...") and ``<lora:name:w>`` prompt tags."""
    found: dict[str, str | None] = {}
    hashes = next((v for k, v in params.items() if k.lower() == "lora hashes"), "")
    for part in hashes.split(","):
        name, _, hash_ = part.rpartition(":")
        if name.strip():
            found[name.strip()] = hash_.strip() or None
    for name in _LORA_TAG.findall(params.get("Prompt", "")):
        found.setdefault(name.strip(), None)
    return found


def match_loras(lora_dir: Path, params: Mapping[str, str]) -> tuple[ModelMatch, ...]:
    """Each LoRA the image names, found (by file name) in ``lora_dir`` or not."""
    installed = {p.stem: p for p in lora_dir.rglob("*") if p.suffix in LORA_SUFFIXES} if lora_dir.is_dir() else {}
    out = []
    for name, hash_ in lora_names(params).items():
        if name in installed:
            message = f"LoRA {name} is installed, but Atelier does not apply LoRAs yet; the result will differ."
            out.append(ModelMatch(True, name, name, hash_, message, kind="LoRA"))
        else:
            out.append(_missing(name, hash_, "Lora", "LoRA"))
    return tuple(out)
