"""File hashes as A1111 writes them (``Model hash`` = sha256[:10]), cached by mtime.

Hashing a multi-GB checkpoint takes seconds, so results are kept in the data
dir's ``cache.json`` keyed by path, size and modification time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

from pipelines.files import write_text_atomically

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def sha256_file(path: Path, *, offset: int = 0) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        fh.seek(offset)
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def addnet_sha256(path: Path) -> str:
    """kohya's "addnet" hash of a safetensors file: the sha256 of the bytes after its header
    (A1111's ``Lora hashes`` use its first 12 hex digits; Civitai indexes it)."""
    with path.open("rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
    return sha256_file(path, offset=8 + header_len)


class HashCache:
    """sha256 of files, remembered in a JSON file across runs."""

    def __init__(self, cache_file: Path) -> None:
        self._file = cache_file
        self._lock = threading.Lock()
        self._sections: dict[str, dict[str, dict]] | None = None

    def _load(self, section: str = "sha256") -> dict[str, dict]:
        if self._sections is None:
            try:
                data = json.loads(self._file.read_text())
                self._sections = {k: v for k, v in data.items() if isinstance(v, dict)}
            except (OSError, ValueError, AttributeError):
                self._sections = {}
        return self._sections.setdefault(section, {})

    def addnet(self, path: Path) -> str:
        """The addnet hash of a safetensors file, computed once per (path, size, mtime)."""
        return self._hash(path, "addnet", addnet_sha256)

    def cached(self, path: Path) -> str | None:
        """The sha256 remembered for this exact file (same size and mtime), without hashing."""
        try:
            stat = path.stat()
        except OSError:
            return None
        with self._lock:
            entry = self._load().get(str(path.resolve()))
        if entry and entry["size"] == stat.st_size and entry["mtime"] == stat.st_mtime:
            return entry["sha256"]
        return None

    def sha256(self, path: Path) -> str:
        """Full-file sha256, computed once per (path, size, mtime)."""
        return self._hash(path, "sha256", sha256_file)

    def _hash(self, path: Path, section: str, compute) -> str:
        stat = path.stat()
        key = str(path.resolve())
        with self._lock:
            entry = self._load(section).get(key)
            if entry and entry["size"] == stat.st_size and entry["mtime"] == stat.st_mtime:
                return entry["sha256"]
        log.info("hashing %s (%s, %d bytes)", path, section, stat.st_size)
        value = compute(path)
        with self._lock:
            self._load(section)[key] = {"size": stat.st_size, "mtime": stat.st_mtime, "sha256": value}
            self._save()
        return value

    def _save(self) -> None:
        write_text_atomically(self._file, json.dumps(self._sections, indent=1))
