import torch

from pipelines.models.cache import ModelCache
from pipelines.models.memory import module_bytes


def test_module_bytes_counts_parameters_and_buffers():
    m = torch.nn.BatchNorm1d(10)  # 20 params + 20 running stats + 1 counter (int64)
    assert module_bytes(m) == 20 * 4 + 20 * 4 + 8


def test_lru_eviction_by_bytes():
    cache = ModelCache(budget_bytes=100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    cache.get("a")  # a is now more recent than b
    cache.put("c", "C", 40)
    assert set(cache.keys()) == {"a", "c"}
    assert cache.used_bytes == 80


def test_entry_in_use_is_never_evicted():
    cache = ModelCache(budget_bytes=100)
    cache.put("a", "A", 60)
    assert cache.acquire("a") == "A"
    cache.put("b", "B", 60)  # over budget, but "a" is held
    assert set(cache.keys()) == {"a", "b"}
    cache.release("a")
    cache.put("c", "C", 60)
    assert cache.keys() == ["c"]  # both released entries had to go to fit 60 bytes


def test_remove_refuses_an_entry_in_use():
    cache = ModelCache(budget_bytes=100)
    cache.put("a", "A", 10)
    cache.acquire("a")
    assert cache.remove("a") is False and cache.keys() == ["a"]
    cache.release("a")
    assert cache.remove("a") is True and cache.keys() == []


def test_acquire_missing_returns_none():
    assert ModelCache(10).acquire("nope") is None
