"""Loaded pipelines kept in memory, counted in bytes, evicted least-recently-used.

An entry in use is locked and never evicted. Getting a cached entry touches no
file on disk.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from pipelines.models.memory import fmt

log = logging.getLogger(__name__)


@dataclass
class CacheEntry:
    key: str
    value: Any
    size_bytes: int
    last_used: float = field(default_factory=time.monotonic)
    locks: int = 0


class ModelCache:
    """A byte-budgeted LRU of loaded models, safe to use from several threads."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: dict[str, CacheEntry] = {}
        self._lock = threading.RLock()

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.size_bytes for e in self._entries.values())

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry.last_used = time.monotonic()
            return entry.value

    def acquire(self, key: str) -> Any | None:
        """Mark an entry in use (never evicted while held); None if it is not cached."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry.locks += 1
            entry.last_used = time.monotonic()
            return entry.value

    def release(self, key: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.locks:
                entry.locks -= 1

    def make_room(self, needed_bytes: int) -> None:
        """Evict unlocked entries, oldest first, until ``needed_bytes`` fit the budget."""
        with self._lock:
            free = self.budget_bytes - self.used_bytes
            victims = sorted((e for e in self._entries.values() if e.locks == 0), key=lambda e: e.last_used)
            for entry in victims:
                if free >= needed_bytes:
                    break
                self._evict(entry)
                free += entry.size_bytes
            log.info("cache: need %s, free %s of budget %s after eviction", fmt(needed_bytes), fmt(max(free, 0)),
                     fmt(self.budget_bytes))

    def put(self, key: str, value: Any, size_bytes: int) -> None:
        with self._lock:
            self.make_room(size_bytes)
            self._entries[key] = CacheEntry(key, value, size_bytes)
            log.info("cache: added %s (%s); %s of %s used", key, fmt(size_bytes), fmt(self.used_bytes),
                     fmt(self.budget_bytes))

    def remove(self, key: str) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.locks:
                return False
            self._evict(entry)
            return True

    def clear(self) -> None:
        with self._lock:
            for entry in [e for e in self._entries.values() if e.locks == 0]:
                self._evict(entry)

    def _evict(self, entry: CacheEntry) -> None:
        del self._entries[entry.key]
        log.info("cache: evicted %s (%s)", entry.key, fmt(entry.size_bytes))
        entry.value = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
