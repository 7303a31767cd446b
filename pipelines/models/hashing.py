"""File hashes as A1111 writes them (``Model hash`` = sha256[:10]), cached by mtime.

Hashing a multi-GB checkpoint takes seconds, so results are kept in the data
dir's ``cache.json`` keyed by path, size and modification time. A hash can run in
the background (:meth:`HashCache.submit`) while the same file is being loaded, so the
load and the hash share the file's reads from the page cache and the first image
does not wait for a second pass over the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from pipelines.files import write_text_atomically

log = logging.getLogger(__name__)
# Large reads: each one hands the GIL back and forth twice (read, update), and on a busy machine every hand-over
# waits for the scheduler, so a load running beside the hash is interrupted ~200 times for 1.7 GB, not ~3,400.
_CHUNK = 16 << 20

FileHasher = Callable[[Path, int], str]  # (file, offset) -> hex sha256 of its bytes from offset on


def sha256_file(path: Path, offset: int = 0) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as fh:
        fh.seek(offset)
        while size := fh.readinto(buffer):
            digest.update(view[:size])  # hashlib releases the GIL on large updates: a load runs meanwhile
    return digest.hexdigest()


def addnet_offset(path: Path) -> int:
    """Where a safetensors file's tensor bytes begin (after its 8-byte length and JSON header)."""
    with path.open("rb") as fh:
        return 8 + int.from_bytes(fh.read(8), "little")


def addnet_sha256(path: Path) -> str:
    """kohya's "addnet" hash of a safetensors file: the sha256 of the bytes after its header
    (A1111's ``Lora hashes`` use its first 12 hex digits; Civitai indexes it)."""
    return sha256_file(path, addnet_offset(path))


class HashCache:
    """sha256 of files, remembered in a JSON file across runs; computed at most once per file version.

    ``hasher`` computes a hash (tests pass a slow or failing one to observe the order of events). A hash
    that failed is remembered for that file version (size, mtime) for this process: it is not retried on
    every image, and the callers go on without it.
    """

    def __init__(self, cache_file: Path, *, hasher: FileHasher = sha256_file) -> None:
        self._file = cache_file
        self._hasher = hasher
        self._lock = threading.Lock()
        self._sections: dict[str, dict[str, dict]] | None = None
        # (section, path) -> (size, mtime, future) of the hashes running now, and of those that failed
        self._pending: dict[tuple[str, str], tuple[int, float, Future[str]]] = {}

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
        return self._start(path, "addnet", background=False).result()

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
        """Full-file sha256, computed once per (path, size, mtime); waits for one already running."""
        return self._start(path, "sha256", background=False).result()

    def submit(self, path: Path, section: str = "sha256") -> Future[str]:
        """The file's hash (``sha256`` or ``addnet``) as a future: done at once when known, else computed in
        a background thread of its own (one per file, however often it is asked for)."""
        return self._start(path, section, background=True)

    def _start(self, path: Path, section: str, *, background: bool) -> Future[str]:
        stat = path.stat()
        key = str(path.resolve())
        with self._lock:
            entry = self._load(section).get(key)
            if entry and entry["size"] == stat.st_size and entry["mtime"] == stat.st_mtime:
                return _done(entry["sha256"])
            pending = self._pending.get((section, key))
            if pending is not None and pending[:2] == (stat.st_size, stat.st_mtime):
                return pending[2]
            future: Future[str] = Future()
            self._pending[(section, key)] = (stat.st_size, stat.st_mtime, future)
        args = (future, path, key, section, stat.st_size, stat.st_mtime)
        if background:
            threading.Thread(target=self._compute, args=args, name=f"hash {path.name}", daemon=True).start()
        else:
            self._compute(*args)
        return future

    def _compute(self, future: Future[str], path: Path, key: str, section: str, size: int, mtime: float) -> None:
        log.info("hashing %s (%s, %d bytes)", path, section, size)
        try:
            value = self._hasher(path, addnet_offset(path) if section == "addnet" else 0)
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits for it; the caller decides
            log.warning("could not hash %s (%s): %s", path, section, exc)
            future.set_exception(exc)
            return
        with self._lock:
            self._load(section)[key] = {"size": size, "mtime": mtime, "sha256": value}
            self._pending.pop((section, key), None)
            try:
                self._save()
            except OSError as exc:  # the hash still stands for this run
                log.warning("could not write %s: %s", self._file, exc)
        future.set_result(value)

    def _save(self) -> None:
        write_text_atomically(self._file, json.dumps(self._sections, indent=1))


def _done(value: str) -> Future[str]:
    future: Future[str] = Future()
    future.set_result(value)
    return future
