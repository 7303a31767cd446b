"""Clean Gradio's temporary folder on a schedule (issue 12): uploads, the copies of results a page shows,
deep links. Gradio keeps them until someone deletes them.

A :class:`TempSweeper` belongs to one served app: the server's lifespan starts it with the folder that app
stores its files in, and stops it when the server closes. Every ``every_s`` seconds it deletes the files
there that have not changed for ``max_age_s`` seconds, and the empty folders as old.

Age is the inode change time (ctime), as Gradio's own cleaning reads it: a copy keeps its source's
modification time (``shutil.copy2``), but its ctime is when it was written, and Gradio touches a cached file
each time it hands it out again, so a file a page was given within the age limit is never deleted. Links are
deleted as links; nothing they point to is touched. Gradio's machine-wide default folder (``<tmp>/gradio``,
shared by every Gradio app on the machine that sets no ``GRADIO_TEMP_DIR``) is never swept: launch.py gives
Atelier its own (``DATA_DIR/.gradio_tmp``).

We do not use ``gr.Blocks(delete_cache=...)``: it deletes only the files its own app recorded, so uploads
no event used stay forever, and at every shutdown it deletes all of them whatever their age; Gradio names
cached files by their content, so another app on the same folder (a test worker, a second instance) loses
the files its open pages still show.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def shared_default_folder() -> Path:
    """The folder Gradio uses when ``GRADIO_TEMP_DIR`` is unset: one for every Gradio app on the machine."""
    return (Path(tempfile.gettempdir()) / "gradio").resolve()


def sweep(folder: Path, max_age_s: float, now: float | None = None) -> list[Path]:
    """Delete the files (and links) under ``folder`` whose ctime is more than ``max_age_s`` seconds before
    ``now``, then the empty folders as old; returns the deleted files. Never follows links."""
    now = time.time() if now is None else now
    deleted: list[Path] = []
    for root, dirs, files in os.walk(folder, topdown=False):  # children first: a folder emptied now is seen
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = Path(root, name)
            try:
                if now - path.lstat().st_ctime > max_age_s:
                    path.unlink()
                    deleted.append(path)
            except FileNotFoundError:  # another sweeper, or Gradio, got there first
                continue
        if Path(root) != folder:
            try:  # emptying a folder changes its ctime, so it goes one sweep later, once it is as old
                if now - os.lstat(root).st_ctime > max_age_s:
                    os.rmdir(root)
            except OSError:  # not empty, or gone
                pass
    return deleted


@dataclass
class TempSweeper:
    """Sweeps one folder every ``every_s`` seconds while the server runs (``runs`` counts the sweeps)."""

    folder: Path
    max_age_s: float
    every_s: float
    runs: int = 0
    deleted: int = 0
    _task: asyncio.Task | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return self.max_age_s > 0 and self.every_s > 0 and self.folder.resolve() != shared_default_folder()

    async def _loop(self) -> None:
        while True:
            # Not at start: with a sweep while the server started, Gradio's start-up check (one HEAD of the page,
            # given 3 s) often failed in parallel test runs on a loaded machine ("localhost is not accessible").
            await asyncio.sleep(self.every_s)
            try:
                gone = await asyncio.to_thread(sweep, self.folder, self.max_age_s)
            except OSError as exc:  # the folder is unreadable or missing: try again next time
                log.warning("could not clean Gradio's temporary folder %s: %s", self.folder, exc)
                gone = []
            self.runs += 1
            self.deleted += len(gone)
            if gone:
                log.info("deleted %d temporary file(s) older than %g s from %s", len(gone), self.max_age_s,
                         self.folder)

    def start(self) -> None:
        if not self.enabled:
            if self.max_age_s > 0:
                log.warning("Gradio's temporary folder %s is shared by every Gradio app on this machine: Atelier "
                            "does not clean it (set GRADIO_TEMP_DIR to a folder of its own)", self.folder)
            return
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None


def sweeper_lifespan(max_age_s: float, every_s: float):
    """A FastAPI lifespan for Gradio's ``app_kwargs``: sweeps the folder the app stores uploads in
    (``app.uploaded_file_dir``) while it serves; the sweeper is ``app.state.temp_sweeper``."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        sweeper = TempSweeper(Path(app.uploaded_file_dir), max_age_s, every_s)
        app.state.temp_sweeper = sweeper
        sweeper.start()
        try:
            yield
        finally:
            await sweeper.stop()

    return lifespan
