"""The Models tab over HTTP with the model store: every kind listed with what is in memory, unloading one
model, searching the (local) Hub and installing a result as its kind; offline, search says why not."""

from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError

from pipelines.context import AppContext
from pipelines.models.kinds import ModelType
from tests.support.apps import install_models, make_settings, served_ui
from tests.support.hub_server import LocalHub
from tests.support.tiny_networks import save_embedding, save_kohya_lora, save_vae_file
from tests.support.tiny_upscalers import save_rrdbnet
from tests.support.ui_client import Client
from webui.tabs.models import COLUMNS

NAME, TYPE, MEMORY, IN_USE = (COLUMNS.index(c) for c in ("Name", "Type", "In memory", "In use"))


def rows_by_name(table: dict) -> dict[str, list]:
    return {row[NAME].split(" [")[0]: row for row in table["data"]}


@pytest.fixture
def served(tmp_path, model_store):
    """A server over every kind of model on disk, with a local Hub holding an ESRGAN repo to search for."""
    install_models(model_store, tmp_path, ["tiny-sd15"])
    models = tmp_path / "models"
    save_kohya_lora(models / "Lora" / "tiny-lora.safetensors")
    save_rrdbnet(models / "ESRGAN" / "4x-tiny.safetensors", scale=4)
    save_embedding(tmp_path / "embeddings" / "tiny-style.safetensors")
    save_vae_file(models / "VAE" / "tiny-vae.safetensors")
    repo = tmp_path / "repo"
    save_rrdbnet(repo / "2x-hub-esrgan.safetensors", scale=2, seed=3)
    (repo / "README.md").write_text("---\nlicense: mit\ntags:\n- super-resolution\n---\n")
    with LocalHub() as hub:
        hub.add_repo("someone/hub-esrgan", repo, downloads=12, likes=3)
        ctx = AppContext.build(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))
        with served_ui(ctx) as url:
            yield ctx, Client(url, verbose=False)


def test_every_kind_is_listed_and_one_loaded_model_unloads(served):
    ctx, client = served
    table, _loaded = client.predict(api_name="/list_models")
    rows = rows_by_name(table)
    assert {rows[n][TYPE] for n in ("tiny-sd15", "tiny-lora", "4x-tiny", "tiny-style", "tiny-vae")} == {
        "Checkpoint", "LoRA", "Upscaler", "Embedding", "VAE"}
    assert all(row[MEMORY] == "" for row in rows.values())

    store = ctx.store
    upscaler = store.load("4x-tiny", model_type=ModelType.UPSCALER)
    lora = store.find("tiny-lora", ModelType.LORA)
    with store.use(lora):
        table, loaded = client.predict(api_name="/list_models")
        rows = rows_by_name(table)
        entries = {e.name: e for e in store.memory()}
        assert rows["4x-tiny"][MEMORY].startswith(f"{entries['4x-tiny'].tier.value} · ")
        assert rows["4x-tiny"][MEMORY].endswith(("KiB", "MiB"))
        assert {key for _label, key in loaded["choices"]} == {upscaler.record.ref.key, lora.ref.key}
        assert rows["4x-tiny"][IN_USE] == "" and rows["tiny-lora"][IN_USE] == "yes"
        _table, _loaded, message = client.predict(key=lora.ref.key, api_name="/unload_model")
        assert message == "**tiny-lora** is not loaded or is in use by a job"  # a job holds it
    assert store.loaded(lora, ModelType.LORA) is not None

    table, _loaded, message = client.predict(key=upscaler.record.ref.key, api_name="/unload_model")
    assert message == "Unloaded **4x-tiny**"
    rows = rows_by_name(table)
    assert rows["4x-tiny"][MEMORY] == "" and rows["tiny-lora"][MEMORY] != ""
    assert [e.name for e in store.memory()] == ["tiny-lora"]
    with pytest.raises(AppError, match="Pick a loaded model"):
        client.predict(key=None, api_name="/unload_model")


def test_search_then_install_lands_the_file_as_its_kind(served):
    ctx, client = served
    results, install_pick, note = client.predict(query="esrgan", api_name="/search_models")
    assert note == "1 result(s), 1 installable" and install_pick["value"] == "someone/hub-esrgan"
    (row,) = results["data"]
    assert row[:5] == ["someone/hub-esrgan", "Upscaler (file)", 12, 3, "mit"]

    table, message, _checkpoint = client.predict(repo="someone/hub-esrgan", filename="largest .safetensors",
                                                 api_name="/install_model")
    assert message.startswith("Installed **2x-hub-esrgan** as Upscaler")
    assert rows_by_name(table)["2x-hub-esrgan"][TYPE] == "Upscaler"
    record = ctx.store.find("2x-hub-esrgan", ModelType.UPSCALER)
    assert record.path == ctx.settings.upscaler_dirs[0] / "2x-hub-esrgan.safetensors"
    assert "2x-hub-esrgan" in ctx.upscalers.names()


def test_offline_search_says_why(live_app):
    client = Client(live_app["url"], verbose=False)
    results, install_pick, note = client.predict(query="sdxl", api_name="/search_models")
    assert results["data"] == [] and install_pick["value"] is None
    assert note.startswith("⚠️ Hub search is unavailable: Hub access is off (HF_HUB_OFFLINE")
