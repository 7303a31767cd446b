"""Writing files so that readers (and the next start after a crash) see the old file or the new one, never half.

Every write goes to a temporary file in the target's folder, is flushed and fsynced, then renamed over the
target (or, for ``overwrite=False``, hard-linked to it so an existing file is never replaced); the folder is
fsynced afterwards where the platform allows. On any error the temporary file is removed and the target is
left as it was; a full disk (``ENOSPC``/``EDQUOT``) becomes :class:`~pipelines.errors.DiskFullError`.
A process killed mid-write leaves its temporary file (``.NAME.xxxxxxxx.tmp``) behind: :func:`remove_stale_temp_files`
removes those at the next start.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from pipelines.errors import DiskFullError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# What atomic_file's mkstemp names: "." + the target's name + "." + 8 of mkstemp's characters + ".tmp".
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
STALE_AFTER_S = 60.0  # a write in progress touches its file far more often than this

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_file(path: Path, *, overwrite: bool = True) -> Iterator[BinaryIO]:
    """A binary file object whose contents become ``path`` only when the ``with`` block finishes cleanly.

    ``overwrite=False`` raises :class:`FileExistsError` (and writes nothing) when ``path`` already exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        _publish(Path(temp_name), path, overwrite)
    except OSError as exc:
        Path(temp_name).unlink(missing_ok=True)
        if exc.errno in _DISK_FULL:
            raise DiskFullError(f"disk full while saving {path}: {exc.strerror or exc}") from exc
        raise
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def write_bytes_atomically(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """``data`` into ``path`` through :func:`atomic_file`."""
    with atomic_file(path, overwrite=overwrite) as file:
        file.write(data)


def write_text_atomically(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """``text`` into ``path`` through :func:`atomic_file` (newlines written as given)."""
    write_bytes_atomically(path, text.encode(encoding))


def _publish(temp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # fails with FileExistsError instead of replacing, atomically
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
        os.replace(temp, path)
        return
    temp.unlink()


def _sync_folder(folder: Path) -> None:
    """Best effort: make the rename itself durable (not possible on Windows, nor on some file systems)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_atomic_temp_name(name: str) -> bool:
    """Whether ``name`` is one :func:`atomic_file` gives its temporary files."""
    return _TEMP_NAME.fullmatch(name) is not None


def remove_stale_temp_files(trees: Iterable[Path], *, shallow: Iterable[Path] = (),
                            older_than_s: float = STALE_AFTER_S) -> int:
    """Remove :func:`atomic_file`'s temporary files left by a process killed mid-write in ``trees`` (with their
    subfolders; links not followed) and ``shallow`` (their own files only); returns how many. Only files named
    exactly as atomic_file names them and untouched for ``older_than_s`` (no write in progress) go."""
    removed: list[Path] = []
    cutoff = time.time() - older_than_s
    candidates = [*(p for tree in trees for p in _files(Path(tree), True)),
                  *(p for folder in shallow for p in _files(Path(folder), False))]
    for path in (p for p in candidates if is_atomic_temp_name(p.name)):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError as exc:  # gone meanwhile, or not ours to remove: leave it
            log.debug("left %s: %s", path, exc)
    if removed:
        log.info("removed %d temporary file(s) left by interrupted writes: %s", len(removed),
                 ", ".join(str(p) for p in removed[:10]) + (", ..." if len(removed) > 10 else ""))
    return len(removed)


def _files(folder: Path, recursive: bool) -> Iterator[Path]:
    if recursive:
        for root, _dirs, files in os.walk(folder):
            yield from (Path(root) / name for name in files)
    elif folder.is_dir():
        yield from folder.iterdir()
