"""``GET /sdapi/v1/memory``: A1111's ``ram`` and ``cuda``, plus the models in memory with their bytes and tier."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from pipelines.context import AppContext
from pipelines.models.kinds import ModelType
from pipelines.models.store import ModelStore
from tests.support.apps import install_models, make_settings
from tests.support.tiny_networks import save_kohya_lora
from webui.api import ApiConfig, create_api_app
from webui.api.routes_models import memory_report


@pytest.fixture
def ctx(tmp_path, model_store) -> AppContext:
    """A checkpoint and a LoRA, in a store with two tiers (device and parked RAM), as on a GPU machine."""
    install_models(model_store, tmp_path, ["tiny-sd15"])
    save_kohya_lora(tmp_path / "models" / "Lora" / "tiny-lora.safetensors")
    settings = make_settings(tmp_path)
    return AppContext.build(settings, store=ModelStore(settings, two_tier=True))


def test_memory_lists_each_loaded_model_with_its_bytes_and_tier(ctx):
    with TestClient(create_api_app(ctx, ApiConfig()), base_url="http://testserver/sdapi/v1") as api:
        assert api.get("/memory").json()["models"] == []
        checkpoint = ctx.store.load("tiny-sd15")
        lora = ctx.store.load("tiny-lora", model_type=ModelType.LORA)
        body = api.get("/memory").json()
    assert set(body["ram"]) == {"free", "used", "total"}
    assert "error" in body["cuda"] or "system" in body["cuda"]  # A1111's shape, unchanged
    models = {m["name"]: m for m in body["models"]}
    assert models == {
        "tiny-sd15": {"name": "tiny-sd15", "type": "checkpoint", "bytes": sum(checkpoint.storages().values()),
                      "tier": "device", "in_use": False},
        "tiny-lora": {"name": "tiny-lora", "type": "lora", "bytes": sum(lora.storages().values()),
                      "tier": "ram", "in_use": False},  # small models stay in RAM
    }
    assert models["tiny-sd15"]["bytes"] > models["tiny-lora"]["bytes"] > 0


def test_a_model_held_by_a_job_is_in_use(ctx):
    with ctx.store.use("tiny-lora", model_type=ModelType.LORA):
        (held,) = memory_report(ctx.store).models
    assert held.name == "tiny-lora" and held.in_use
    assert [m.in_use for m in memory_report(ctx.store).models] == [False]


def test_memory_report_takes_a_stand_in_for_torch_cuda(ctx):
    stats = {"allocated_bytes.all.current": 3, "allocated_bytes.all.peak": 4, "num_ooms": 1}
    fake = SimpleNamespace(is_available=lambda: True, mem_get_info=lambda: (30, 100), memory_stats=lambda: stats)
    ctx.store.load("tiny-lora", model_type=ModelType.LORA)
    report = memory_report(ctx.store, cuda=fake)
    assert report.cuda["system"] == {"free": 30, "used": 70, "total": 100}
    assert report.cuda["allocated"] == {"current": 3, "peak": 4} and report.cuda["active"] == {"current": 0, "peak": 0}
    assert report.cuda["events"] == {"retries": 0, "oom": 1}
    assert [m.name for m in report.models] == ["tiny-lora"]
    unavailable = SimpleNamespace(is_available=lambda: False)
    assert memory_report(ctx.store, cuda=unavailable).cuda == {"error": "CUDA is not available on this machine"}
