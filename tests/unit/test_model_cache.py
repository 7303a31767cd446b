"""The byte-accounted cache's decisions, on the CPU, with budgets the test gives (real tensors, real moves)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from pipelines.models.cache import ModelCache
from pipelines.models.memory import module_bytes
from pipelines.models.memory_budget import BudgetPolicy, Tier, TierLimits


@dataclass
class GivenMemory:
    """Free bytes per tier as the test says; it can change between decisions, like a real device's."""

    free: dict[Tier, int] = field(default_factory=lambda: {Tier.DEVICE: 100, Tier.RAM: 100})

    def free_bytes(self, tier: Tier) -> int:
        return self.free[tier]

    def total_bytes(self, tier: Tier) -> int:
        return 1 << 40


@dataclass
class Weights:
    """A cacheable value: some real tensors, and a log of where they were moved."""

    tensors: list[torch.Tensor]
    moves: list[str] = field(default_factory=list)
    parkable: bool = True
    wants_device: bool = True

    @classmethod
    def of(cls, *sizes: int) -> Weights:
        return cls([torch.zeros(n, dtype=torch.uint8) for n in sizes])

    def storages(self) -> dict[int, int]:
        return {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in self.tensors}

    def move_to(self, device: torch.device) -> None:
        self.tensors = [t.to(device) for t in self.tensors]
        self.moves.append(str(device))


def one_tier(free: int) -> tuple[ModelCache, GivenMemory]:
    memory = GivenMemory({Tier.DEVICE: free})
    return ModelCache(BudgetPolicy(memory, {Tier.DEVICE: TierLimits(0)}), device=torch.device("cpu")), memory


def two_tiers(device_free: int, ram_free: int) -> tuple[ModelCache, GivenMemory]:
    memory = GivenMemory({Tier.DEVICE: device_free, Tier.RAM: ram_free})
    policy = BudgetPolicy(memory, {Tier.DEVICE: TierLimits(0), Tier.RAM: TierLimits(0)})
    # on a CPU both tiers are RAM; the decisions and the moves are the same as with a GPU
    return ModelCache(policy, device=torch.device("cpu"), park_device=torch.device("cpu")), memory


def test_module_bytes_counts_parameters_and_buffers():
    m = torch.nn.BatchNorm1d(10)  # 20 params + 20 running stats + 1 counter (int64)
    assert module_bytes(m) == 20 * 4 + 20 * 4 + 8


def test_lru_eviction_by_bytes():
    cache, memory = one_tier(100)
    cache.put("a", Weights.of(40))
    memory.free[Tier.DEVICE] -= 40  # what the loaded model took
    cache.put("b", Weights.of(40))
    memory.free[Tier.DEVICE] -= 40
    cache.get("a")  # a is now more recent than b
    cache.put("c", Weights.of(40))
    assert set(cache.keys()) == {"a", "c"}
    assert cache.used_bytes() == 80


def test_entry_in_use_is_never_evicted():
    cache, memory = one_tier(100)
    cache.put("a", Weights.of(60))
    memory.free[Tier.DEVICE] = 40
    assert cache.acquire("a") is not None
    cache.put("b", Weights.of(60))  # over budget, but "a" is held
    assert set(cache.keys()) == {"a", "b"}
    memory.free[Tier.DEVICE] = -20
    cache.release("a")
    cache.put("c", Weights.of(60))
    assert cache.keys() == ["c"]  # both released entries had to go to fit 60 bytes


def test_shared_storages_are_counted_once():
    cache, _ = one_tier(1000)
    shared = torch.zeros(300, dtype=torch.uint8)
    cache.put("pipe", Weights([shared, torch.zeros(100, dtype=torch.uint8)]))
    cache.put("view", Weights([shared]))  # e.g. a second pipeline over the same UNet
    assert cache.used_bytes() == 400


def test_budget_follows_free_memory_at_each_decision():
    cache, memory = one_tier(100)
    cache.put("a", Weights.of(50))
    memory.free[Tier.DEVICE] = 50  # fits alongside "a"
    cache.put("b", Weights.of(50))
    assert set(cache.keys()) == {"a", "b"}
    memory.free[Tier.DEVICE] = 0  # something else took the rest of the device: the oldest goes for c
    cache.put("c", Weights.of(50))
    assert set(cache.keys()) == {"b", "c"}
    memory.free[Tier.DEVICE] = 1000  # and when memory is freed elsewhere, nothing is evicted
    cache.put("d", Weights.of(50))
    assert set(cache.keys()) == {"b", "c", "d"}


def test_evicted_from_the_device_is_parked_in_ram_and_comes_back(caplog):
    cache, memory = two_tiers(device_free=100, ram_free=1000)
    a = Weights.of(80)
    cache.put("a", a)
    memory.free[Tier.DEVICE] = 20
    with caplog.at_level(logging.INFO, logger="pipelines.models.cache"):
        cache.put("b", Weights.of(80))  # a is idle: parked, not dropped
    assert cache.tier_of("a") is Tier.RAM and cache.tier_of("b") is Tier.DEVICE
    assert a.moves == ["cpu"]
    assert any("budget" in r.message and "free" in r.message for r in caplog.records)  # decisions carry numbers
    assert cache.acquire("a") is a  # back to the device, the same object: nothing re-read
    assert cache.tier_of("a") is Tier.DEVICE and cache.tier_of("b") is Tier.RAM  # b made room in turn
    assert a.moves == ["cpu", "cpu"]


def test_parked_models_are_dropped_when_ram_is_short_too():
    cache, memory = two_tiers(device_free=100, ram_free=50)
    cache.put("a", Weights.of(80))
    memory.free[Tier.DEVICE] = 20
    cache.put("b", Weights.of(80))  # a does not fit RAM's 50 bytes: dropped
    assert cache.keys() == ["b"]


def test_unparkable_entries_are_dropped_not_moved():
    cache, memory = two_tiers(device_free=100, ram_free=1000)
    offloaded = Weights.of(80)
    offloaded.parkable = False  # e.g. a pipeline with offload hooks
    cache.put("a", offloaded)
    memory.free[Tier.DEVICE] = 20
    cache.put("b", Weights.of(80))
    assert cache.keys() == ["b"] and offloaded.moves == []


def test_small_models_live_in_ram_and_stay_there():
    cache, _ = two_tiers(device_free=100, ram_free=1000)
    lora = Weights.of(10)
    lora.wants_device = False
    cache.put("lora", lora, tier=Tier.RAM)
    assert cache.acquire("lora") is lora and cache.tier_of("lora") is Tier.RAM and lora.moves == []


def test_remove_refuses_an_entry_in_use():
    cache, _ = one_tier(100)
    cache.put("a", Weights.of(10))
    cache.acquire("a")
    assert cache.remove("a") is False and cache.keys() == ["a"]
    cache.release("a")
    assert cache.remove("a") is True and cache.keys() == []


def test_acquire_missing_returns_none():
    assert one_tier(10)[0].acquire("nope") is None
