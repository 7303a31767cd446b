"""Model, option and status routes over HTTP: sd-models, refresh, options (swap + persist), lists, memory, flags."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from fastapi.testclient import TestClient

from pipelines import samplers
from pipelines.context import AppContext
from tests.support.api import FLAGS
from tests.support.apps import install_models, make_settings
from webui.api import ApiConfig, create_api_app, routes_models


def _title(api, name: str) -> str:
    return next(m["title"] for m in api.get("/sd-models").json() if m["model_name"] == name)


def test_sd_models_lists_installed_checkpoints_with_a1111_titles(api, api_app):
    api.post("/reload-checkpoint")  # the selected model is loaded, hence hashed
    models = {m["model_name"]: m for m in api.get("/sd-models").json()}
    assert {"tiny-sd15", "tiny-sd15-b"} <= set(models)
    loaded = models["tiny-sd15"]
    assert loaded["hash"] == loaded["sha256"][:10] and loaded["title"] == f"tiny-sd15 [{loaded['hash']}]"
    assert loaded["filename"].endswith("tiny-sd15") and loaded["config"] is None
    assert all(m["hash"] is None or len(m["hash"]) == 10 for m in models.values())
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" not in models  # not downloaded: not listed


def test_refresh_checkpoints_finds_new_files(tmp_path, model_store):
    # Its own data dir and app: a checkpoint added to the shared server would show in every later test.
    install_models(model_store, tmp_path, ["tiny-sd15"])
    app = create_api_app(AppContext.build(make_settings(tmp_path)), ApiConfig())
    with TestClient(app, base_url="http://testserver/sdapi/v1") as api:
        install_models(model_store, tmp_path, ["tiny-sd15-file.safetensors"])
        assert "tiny-sd15-file" not in {m["model_name"] for m in api.get("/sd-models").json()}
        assert api.post("/refresh-checkpoints").json() is None
        models = {m["model_name"]: m for m in api.get("/sd-models").json()}
    assert models["tiny-sd15-file"]["filename"].endswith("tiny-sd15-file.safetensors")
    assert models["tiny-sd15-file"]["config"].endswith("tiny-sd15-file.config")


def test_options_have_the_a1111_keys(api):
    options = api.get("/options").json()
    assert options["sd_model_checkpoint"].startswith("tiny-sd15")
    assert options["samples_format"] == "png" and options["CLIP_stop_at_last_layers"] == 1
    for key in ("sd_vae", "sd_checkpoints_limit", "show_progress_every_n_steps", "live_previews_enable",
                "outdir_txt2img_samples", "api_enable_requests", "api_forbid_local_requests", "sd_checkpoint_hash"):
        assert key in options, key


def test_posting_sd_model_checkpoint_swaps_the_model_and_persists_it(api, api_app):
    ctx, config = api_app["ctx"], api_app["data_dir"] / "config.json"
    try:
        changes = {"sd_model_checkpoint": "tiny-sd15-b", "my_extension_key": [1, 2]}
        assert api.post("/options", json=changes).json() is None
        title = _title(api, "tiny-sd15-b")
        options = api.get("/options").json()
        assert options["sd_model_checkpoint"] == title and options["my_extension_key"] == [1, 2]
        assert ctx.selection.current == "tiny-sd15-b" and ctx.store.loaded("tiny-sd15-b") is not None
        assert options["sd_checkpoint_hash"].startswith(title[-11:-1])
        saved = json.loads(config.read_text())
        assert saved["sd_model_checkpoint"] == title and saved["my_extension_key"] == [1, 2]
        response = api.post("/txt2img", json={"prompt": "x", "steps": 2, "width": 64, "height": 64})
        assert json.loads(response.json()["info"])["sd_model_name"] == "tiny-sd15-b"  # the UI's selection too
    finally:
        api.post("/options", json={"sd_model_checkpoint": "tiny-sd15"})
    assert ctx.selection.current == "tiny-sd15"
    assert json.loads(config.read_text())["sd_model_checkpoint"].startswith("tiny-sd15 [")


def test_posting_back_what_get_returned_is_accepted(api):
    options = api.get("/options").json()
    assert api.post("/options", json=options).status_code == 200
    assert api.get("/options").json() == options


@pytest.mark.parametrize(("changes", "status", "field"), [
    ({"sd_model_checkpoint": "no-such-model"}, 404, None),
    ({"CLIP_stop_at_last_layers": 13}, 422, "CLIP_stop_at_last_layers"),
    ({"samples_format": "jpg"}, 422, "samples_format"),
    ({"live_previews_enable": "yes"}, 422, "live_previews_enable"),
    ({"sd_checkpoints_limit": 1.5}, 422, "sd_checkpoints_limit"),
])
def test_bad_options_are_refused_and_nothing_changes(api, api_app, changes, status, field):
    before = api.get("/options").json()
    response = api.post("/options", json={"api_useragent": "changed", **changes})
    assert response.status_code == status, response.text
    if field:
        assert response.json()["detail"].startswith(field)
    assert api.get("/options").json() == before
    assert api_app["ctx"].selection.current == "tiny-sd15"


def test_options_body_must_be_an_object(api):
    assert api.post("/options", json=["sd_model_checkpoint"]).status_code == 422


def test_samplers_and_schedulers(api):
    listed = api.get("/samplers").json()
    assert [s["name"] for s in listed] == samplers.sampler_names()
    dpm = next(s for s in listed if s["name"] == "DPM++ 2M")
    assert dpm == {"name": "DPM++ 2M", "aliases": ["k_dpmpp_2m"], "options": {"scheduler": "karras"}}
    schedulers = {s["name"]: s for s in api.get("/schedulers").json()}
    assert schedulers["karras"] == {"name": "karras", "label": "Karras", "aliases": None, "default_rho": 7.0,
                                    "need_inner_model": False}
    assert "automatic" not in schedulers and {"uniform", "exponential", "beta"} <= set(schedulers)


def test_upscalers_and_latent_modes(api):
    upscalers = api.get("/upscalers").json()
    assert [u["name"] for u in upscalers] == ["None", "Lanczos", "Nearest"]
    assert set(upscalers[0]) == {"name", "model_name", "model_path", "model_url", "scale"}
    assert [m["name"] for m in api.get("/latent-upscale-modes").json()] == [
        "Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)",
        "Latent (nearest-exact)"]  # A1111's list, in its order


@pytest.mark.parametrize("path", ["/loras", "/prompt-styles", "/hypernetworks", "/face-restorers",
                                  "/realesrgan-models"])
def test_lists_of_things_atelier_has_none_of_yet_are_empty(api, path):
    assert api.get(path).json() == []


def test_embeddings_scripts_and_refreshes(api):
    assert api.get("/embeddings").json() == {"loaded": {}, "skipped": {}}
    assert "x/y/z plot" in api.get("/scripts").json()["txt2img"]  # the built-in extensions (test_scripts_api.py)
    for path in ("/refresh-vae", "/refresh-embeddings", "/refresh-loras"):
        assert api.post(path).json() is None


def test_memory(api):
    body = api.get("/memory").json()
    assert set(body["ram"]) == {"free", "used", "total"} and 0 < body["ram"]["used"] < body["ram"]["total"]
    assert "error" in body["cuda"] or {"system", "active", "allocated", "reserved", "inactive", "events"} <= set(
        body["cuda"])


def test_cmd_flags_never_echo_secrets(api):
    response = api.get("/cmd-flags")
    flags = response.json()
    assert flags["api"] is True and flags["port"] == 0
    assert flags["api_auth"] == flags["gradio_auth"] == "<redacted>"
    for secret in ("api-s3cret", "ui-s3cret"):
        assert secret not in response.text
    assert FLAGS["api_auth"].endswith("api-s3cret")  # the server was given them


def test_unload_and_reload_checkpoint(api, api_app):
    store = api_app["ctx"].store
    assert api.post("/unload-checkpoint").json() == {}
    assert store.cache.keys() == []
    assert api.get("/options").json()["sd_model_checkpoint"].startswith("tiny-sd15")  # still selected
    assert api.post("/reload-checkpoint").json() == {}
    assert store.loaded("tiny-sd15") is not None


def test_memory_report_reads_the_cuda_allocator_when_there_is_a_gpu(monkeypatch):
    stats = {"active_bytes.all.current": 1, "active_bytes.all.peak": 2, "allocated_bytes.all.current": 3,
             "allocated_bytes.all.peak": 4, "reserved_bytes.all.current": 5, "reserved_bytes.all.peak": 6,
             "inactive_split_bytes.all.current": 7, "inactive_split_bytes.all.peak": 8, "num_alloc_retries": 9,
             "num_ooms": 10}
    # A stand-in for ``torch`` in routes_models' namespace only: the real torch.cuda is never touched, so
    # nothing else in the process (the shared servers' threads, later tests) can see a fake GPU.
    fake_cuda = SimpleNamespace(is_available=lambda: True, mem_get_info=lambda: (30, 100), memory_stats=lambda: stats)
    real_is_available = torch.cuda.is_available
    monkeypatch.setattr(routes_models, "torch", SimpleNamespace(cuda=fake_cuda))
    cuda = routes_models.memory_report().cuda
    assert cuda["system"] == {"free": 30, "used": 70, "total": 100}
    assert cuda["allocated"] == {"current": 3, "peak": 4} and cuda["inactive"] == {"current": 7, "peak": 8}
    assert cuda["events"] == {"retries": 9, "oom": 10}
    assert torch.cuda.is_available is real_is_available  # the real module is untouched
