"""The history of saved images: record, search, favourite, trash and restore, rescan (one object per app).

The database lives beside the outputs folder (``data_dir/history.sqlite3``, not inside it: the UI serves the
outputs folder's files) and holds paths relative to the outputs folder. A missing database is rebuilt from
the image files in a background thread (so is one whose first scan never finished); searches meanwhile answer
with what is indexed so far.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pipelines.history.thumbnails as thumbnails
import pipelines.history.trash as trash
from pipelines.errors import AtelierError
from pipelines.history.database import HistoryDatabase
from pipelines.history.indexer import FoundFile, entry_from_infotext, find_images, read_entry, relative_path
from pipelines.history.records import HistoryEntry, HistoryPage, HistoryQuery, ScanReport

log = logging.getLogger(__name__)
DATABASE_NAME = "history.sqlite3"
SCANNED = "scanned"  # state key: when the last full scan of the outputs folder ended
SCAN_BATCH = 200  # rows per transaction while scanning: searches get the lock between batches


class HistoryNotFoundError(AtelierError):
    """No image in the history has that id (or its file is gone)."""


class History:
    """The image history of one outputs folder."""

    def __init__(self, outputs_dir: Path, database: Path) -> None:
        self.outputs_dir = outputs_dir
        self.db = HistoryDatabase(database)
        self._scan_lock = threading.Lock()
        self._scanner: threading.Thread | None = None

    @classmethod
    def open(cls, outputs_dir: Path, data_dir: Path) -> History:
        """The history of ``outputs_dir``, its database in ``data_dir``; built in the background when missing, or
        when no full scan has finished yet (the process that started it was stopped)."""
        history = cls(outputs_dir, data_dir / DATABASE_NAME)
        if history.db.get_state(SCANNED) is None:
            history.rescan_in_background()
        return history

    # ---- recording
    def record(self, path: Path, infotext: str, *, size: tuple[int, int], mode: str | None = None) -> None:
        """Index one image Atelier has just saved. A failure is logged, never raised: the image is saved already
        (and the next rescan finds it)."""
        try:
            stat = path.stat()
            entry = entry_from_infotext(relative_path(path, self.outputs_dir), infotext, size, stat.st_mtime_ns / 1e9,
                                        mode=mode)
            self.db.upsert([(entry, stat.st_mtime_ns, stat.st_size)])
        except Exception:
            log.exception("could not record %s in the image history", path)

    def record_images(self, images: Iterable[Any], *, mode: str) -> None:
        """Index every saved image of a job's result (:class:`~pipelines.results.GeneratedImage` items)."""
        for image in images:
            if image.path is not None:
                self.record(image.path, image.infotext, size=image.image.size, mode=mode)

    # ---- reading
    def search(self, query: HistoryQuery) -> HistoryPage:
        entries, total = self.db.search(query.validate())
        return HistoryPage(entries, total, query.page, query.page_size, indexing=self.indexing)

    def get(self, entry_id: int) -> HistoryEntry:
        entry = self.db.get(entry_id)
        if entry is None:
            raise HistoryNotFoundError(f"no image with id {entry_id} in the history")
        return entry

    def file(self, entry: HistoryEntry) -> Path:
        """The entry's file; only ever inside the outputs folder."""
        root = self.outputs_dir.resolve()
        path = (root / entry.path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise HistoryNotFoundError(f"the file of image {entry.id} ({entry.path}) is gone")
        return path

    def thumbnail(self, entry: HistoryEntry) -> Path:
        """A small WebP of the entry's image (made on first use; the file itself if that fails)."""
        return thumbnails.thumbnail(self.outputs_dir, entry, self.file(entry))

    def models(self) -> list[str]:
        return self.db.distinct("model")

    def modes(self) -> list[str]:
        return self.db.distinct("mode")

    # ---- changing
    def set_favourite(self, entry_id: int, favourite: bool) -> HistoryEntry:
        if not self.db.set_favourite(entry_id, favourite):
            raise HistoryNotFoundError(f"no image with id {entry_id} in the history")
        return self.get(entry_id)

    def trash(self, entry_id: int) -> HistoryEntry:
        """Move the image into ``outputs/.trash/`` (same relative path below it); Restore brings it back."""
        entry = self._present(entry_id)
        if entry.trashed:
            return entry
        target = trash.trash_target(self.outputs_dir, entry.path)
        trash.move_file(self.outputs_dir, entry.path, target)
        self.db.move(entry_id, path=target, trashed=True, original=entry.path)
        return self.get(entry_id)

    def restore(self, entry_id: int) -> HistoryEntry:
        """Move a trashed image back where it was (beside it, `` (2)``, if a new file took its name)."""
        entry = self._present(entry_id)
        if not entry.trashed:
            return entry
        target = trash.restore_target(self.outputs_dir, entry.original or entry.path.removeprefix(".trash/"))
        trash.move_file(self.outputs_dir, entry.path, target)
        self.db.move(entry_id, path=target, trashed=False, original="")
        return self.get(entry_id)

    def _present(self, entry_id: int) -> HistoryEntry:
        entry = self.get(entry_id)
        try:
            self.file(entry)
        except HistoryNotFoundError:
            self.db.remove_paths([entry.path])  # deleted outside Atelier: forget it
            raise
        return entry

    # ---- scanning
    @property
    def indexing(self) -> bool:
        return self._scan_lock.locked()

    def rescan(self) -> ScanReport:
        """Index new and changed image files under the outputs folder (by modification time and size) and forget
        the ones that are gone. One scan at a time: a second call waits for the first."""
        with self._scan_lock:
            known = self.db.file_states()
            seen: set[str] = set()
            batch: list[tuple[HistoryEntry, int, int]] = []
            added = updated = unchanged = 0
            failed: list[str] = []
            for found in find_images(self.outputs_dir):
                seen.add(found.relative)
                state = known.get(found.relative)
                if state == (found.mtime_ns, found.size):
                    unchanged += 1
                    continue
                entry = self._read(found, failed)
                if entry is None:
                    continue
                added, updated = (added + 1, updated) if state is None else (added, updated + 1)
                batch.append((entry, found.mtime_ns, found.size))
                if len(batch) >= SCAN_BATCH:
                    self.db.upsert(batch)
                    batch = []
            self.db.upsert(batch)
            gone = [path for path in known if path not in seen]
            self.db.remove_paths(gone)
            self.db.set_state(SCANNED, str(time.time()))
        report = ScanReport(added, updated, len(gone), unchanged, failed)
        log.info("history scan of %s: %d added, %d updated, %d removed, %d unchanged, %d unreadable",
                 self.outputs_dir, added, updated, len(gone), unchanged, len(failed))
        return report

    @staticmethod
    def _read(found: FoundFile, failed: list[str]) -> HistoryEntry | None:
        try:
            return read_entry(found)
        except Exception as exc:  # one unreadable file (truncated, not an image) must not stop the scan
            failed.append(f"{found.relative}: {exc}")
            return None

    def rescan_in_background(self) -> threading.Thread:
        """Start a rescan in a daemon thread (the running one if a scan is already under way)."""
        if self._scanner is not None and self._scanner.is_alive():
            return self._scanner

        def scan() -> None:
            try:
                self.rescan()
            except Exception:
                log.exception("history scan of %s failed", self.outputs_dir)

        self._scanner = threading.Thread(target=scan, name="history-scan", daemon=True)
        self._scanner.start()
        return self._scanner

    def close(self) -> None:
        self.db.close()
