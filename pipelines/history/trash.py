"""Moving images into ``outputs/.trash/`` (keeping their path below it) and back.

A name already taken at the destination (an image trashed twice under the same name, or a new image written
where a trashed one was) gets `` (2)``, `` (3)``, ... before its suffix, so nothing is ever overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from pipelines.history.indexer import TRASH


def free_path(outputs_dir: Path, relative: str) -> str:
    """``relative``, or the first `` (n)`` variant of it with no file there."""
    candidate, n = PurePosixPath(relative), 1
    while (outputs_dir / candidate).exists():
        n += 1
        original = PurePosixPath(relative)
        candidate = original.with_name(f"{original.stem} ({n}){original.suffix}")
    return candidate.as_posix()


def move_file(outputs_dir: Path, source: str, target: str) -> None:
    """Move ``source`` to ``target`` (both relative to the outputs folder); ``target`` must be free."""
    destination = outputs_dir / target
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.rename(outputs_dir / source, destination)  # same file system: the outputs folder's own tree


def trash_target(outputs_dir: Path, relative: str) -> str:
    return free_path(outputs_dir, f"{TRASH}/{relative}")


def restore_target(outputs_dir: Path, original: str) -> str:
    return free_path(outputs_dir, original)
