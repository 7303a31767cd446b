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

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """sha256 of files, remembered in a JSON file across runs."""

    def __init__(self, cache_file: Path) -> None:
        self._file = cache_file
        self._lock = threading.Lock()
        self._entries: dict[str, dict] | None = None

    def _load(self) -> dict[str, dict]:
        if self._entries is None:
            try:
                self._entries = json.loads(self._file.read_text()).get("sha256", {})
            except (OSError, ValueError):
                self._entries = {}
        return self._entries

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
        stat = path.stat()
        key = str(path.resolve())
        with self._lock:
            entry = self._load().get(key)
            if entry and entry["size"] == stat.st_size and entry["mtime"] == stat.st_mtime:
                return entry["sha256"]
        log.info("hashing %s (%d bytes)", path, stat.st_size)
        value = sha256_file(path)
        with self._lock:
            self._load()[key] = {"size": stat.st_size, "mtime": stat.st_mtime, "sha256": value}
            self._save()
        return value

    def _save(self) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sha256": self._entries}, indent=1))
        tmp.replace(self._file)
