"""Loaded models kept in memory, counted in bytes, on one tier (CPU) or two (accelerator + RAM).

- An entry in use (``acquire``d and not yet ``release``d) is never evicted or moved.
- Making room on the device evicts the least recently used idle entries; on two tiers an evicted
  entry is first *parked* in RAM (while RAM's budget allows), and ``acquire`` brings it back to the
  device without reading any file. Past RAM's budget, parked entries are dropped.
- Bytes are counted per tensor storage, so modules shared between entries count once.
- Budgets come from :class:`~pipelines.models.memory_budget.BudgetPolicy`, i.e. from the memory
  free when the decision is made; every decision is logged with its numbers.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from pipelines.models.memory import fmt
from pipelines.models.memory_budget import BudgetPolicy, Tier

log = logging.getLogger(__name__)


class Cacheable(Protocol):
    """What the cache needs of a value: its tensors, and moving them."""

    def storages(self) -> dict[int, int]: ...  # storage pointer -> bytes

    def move_to(self, device: torch.device) -> None: ...

    @property
    def parkable(self) -> bool: ...  # False: dropped rather than parked (e.g. offload hooks attached)


@dataclass
class CacheEntry:
    key: str
    value: Any  # a Cacheable
    storages: dict[int, int]
    tier: Tier
    last_used: float = field(default_factory=time.monotonic)
    locks: int = 0

    @property
    def size_bytes(self) -> int:
        return sum(self.storages.values())


@dataclass(frozen=True)
class EntryInfo:
    """What the memory report shows of one entry."""

    key: str
    size_bytes: int
    tier: Tier
    in_use: bool


class ModelCache:
    """A byte-budgeted LRU of loaded models over one or two tiers, safe to use from several threads."""

    def __init__(self, policy: BudgetPolicy, *, device: torch.device, park_device: torch.device | None = None) -> None:
        self.policy = policy
        self.device = device
        self.park_device = park_device  # None: one tier, evicted entries are dropped
        self._entries: dict[str, CacheEntry] = {}
        self._lock = threading.RLock()

    @property
    def two_tier(self) -> bool:
        return self.park_device is not None

    # ---- reading ----------------------------------------------------------------------------
    def used_bytes(self, tier: Tier | None = None) -> int:
        """Bytes held (on ``tier``, or in all), each storage counted once."""
        with self._lock:
            seen: dict[int, int] = {}
            for entry in self._entries.values():
                if tier is None or entry.tier is tier:
                    seen.update(entry.storages)
            return sum(seen.values())

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def infos(self) -> list[EntryInfo]:
        with self._lock:
            return [EntryInfo(e.key, e.size_bytes, e.tier, e.locks > 0) for e in self._entries.values()]

    def tier_of(self, key: str) -> Tier | None:
        with self._lock:
            entry = self._entries.get(key)
            return entry.tier if entry else None

    def get(self, key: str) -> Any | None:
        """The value if cached (on any tier), without moving it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry.last_used = time.monotonic()
            return entry.value

    # ---- holding ------------------------------------------------------------------------------
    def acquire(self, key: str) -> Any | None:
        """Mark an entry in use, bringing it back to the device if it was parked; None if not cached."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry.locks += 1
            entry.last_used = time.monotonic()
            if entry.tier is Tier.RAM and not self._stays_in_ram(entry):
                try:
                    self._make_room(entry.size_bytes, Tier.DEVICE, reason=f"bring back {key}")
                    self._move(entry, Tier.DEVICE)
                except BaseException:
                    entry.locks -= 1
                    raise
            return entry.value

    def release(self, key: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.locks:
                entry.locks -= 1

    def remeasure(self) -> None:
        """Read every entry's tensor storages again, after a job moved tensors outside the cache (model CPU
        offload and back): the storages are new, and a stale address could be taken for a new model's."""
        with self._lock:
            for entry in self._entries.values():
                if entry.value is not None:
                    entry.storages = entry.value.storages()

    # ---- adding and removing ------------------------------------------------------------------------
    def make_room(self, needed_bytes: int, tier: Tier = Tier.DEVICE) -> None:
        """Evict (park or drop) idle entries, oldest first, until ``needed_bytes`` fit ``tier``'s budget."""
        with self._lock:
            self._make_room(needed_bytes, tier, reason="load")

    def put(self, key: str, value: Any, *, tier: Tier = Tier.DEVICE) -> None:
        """Add a loaded value (already on ``tier``'s device); its bytes are read from its tensors."""
        tier = tier if self.two_tier else Tier.DEVICE
        storages = value.storages()
        with self._lock:
            entry = CacheEntry(key, value, storages, tier)
            self._make_room(self._new_bytes(storages), tier, reason=f"add {key}")
            self._entries[key] = entry
            log.info("cache: added %s (%s) on %s; %s held there", key, fmt(entry.size_bytes), tier,
                     fmt(self.used_bytes(tier)))

    def remove(self, key: str) -> bool:
        """Drop one entry; False when it is in use or not cached."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.locks:
                return False
            self._drop(entry, reason="unloaded")
            return True

    def clear(self) -> None:
        with self._lock:
            for entry in [e for e in self._entries.values() if e.locks == 0]:
                self._drop(entry, reason="unloaded")

    # ---- internals (called with the lock held) ------------------------------------------------------
    def _stays_in_ram(self, entry: CacheEntry) -> bool:
        return not getattr(entry.value, "wants_device", True)

    def _new_bytes(self, storages: dict[int, int]) -> int:
        known: set[int] = set()
        for entry in self._entries.values():
            known.update(entry.storages)
        return sum(size for ptr, size in storages.items() if ptr not in known)

    def _make_room(self, needed: int, tier: Tier, *, reason: str) -> None:
        budget = self.policy.budget(tier, self.used_bytes(tier))
        free = budget.budget_bytes - budget.held_bytes
        log.info("cache: %s needs %s on %s; %s; %s free in budget", reason, fmt(needed), tier, budget.explain(),
                 fmt(max(free, 0)))
        idle = sorted((e for e in self._entries.values() if e.tier is tier and e.locks == 0),
                      key=lambda e: e.last_used)
        for entry in idle:
            if free >= needed:
                break
            freed = entry.size_bytes
            if tier is Tier.DEVICE and self.two_tier and getattr(entry.value, "parkable", False):
                if self._park(entry):
                    free += freed
                    continue
            self._drop(entry, reason=f"to make room for {reason}")
            free += freed
        if free < needed:
            log.warning("cache: %s still needs %s on %s but only %s is free in budget (the rest is in use); "
                        "going ahead", reason, fmt(needed), tier, fmt(max(free, 0)))

    def _park(self, entry: CacheEntry) -> bool:
        """Move an idle device entry to RAM if RAM's budget can make room for it."""
        ram = self.policy.budget(Tier.RAM, self.used_bytes(Tier.RAM))
        if entry.size_bytes > ram.budget_bytes:
            log.info("cache: %s (%s) does not fit RAM's %s; dropping it", entry.key, fmt(entry.size_bytes),
                     ram.explain())
            return False
        self._make_room(entry.size_bytes, Tier.RAM, reason=f"park {entry.key}")
        self._move(entry, Tier.RAM)
        return True

    def _move(self, entry: CacheEntry, tier: Tier) -> None:
        started = time.perf_counter()
        target = self.device if tier is Tier.DEVICE else self.park_device
        assert target is not None
        entry.value.move_to(target)
        entry.storages = entry.value.storages()
        entry.tier = tier
        log.info("cache: moved %s (%s) to %s (%s) in %.3fs", entry.key, fmt(entry.size_bytes), tier, target,
                 time.perf_counter() - started)
        if tier is Tier.RAM and self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _drop(self, entry: CacheEntry, *, reason: str) -> None:
        del self._entries[entry.key]
        log.info("cache: dropped %s (%s) from %s, %s", entry.key, fmt(entry.size_bytes), entry.tier, reason)
        entry.value = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
