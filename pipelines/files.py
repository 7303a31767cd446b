"""Writing files so that readers (and the next start after a crash) see the old file or the new one, never half.

Every write goes to a temporary file in the target's folder, is flushed and fsynced, then renamed over the
target (or, for ``overwrite=False``, hard-linked to it so an existing file is never replaced); the folder is
fsynced afterwards where the platform allows. On any error the temporary file is removed and the target is
left as it was; a full disk (``ENOSPC``/``EDQUOT``) becomes :class:`~pipelines.errors.DiskFullError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pipelines.errors import DiskFullError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


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
