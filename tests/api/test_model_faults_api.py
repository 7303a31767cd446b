"""Broken model files and unusable Hub repos, as a user meets them through the REST API: each is refused with
a 4xx naming the field and the file (or repo) and what is wrong, and the server keeps serving the model it had.

One context for the module, on tiny real models; the broken files are real tiny model files cut short or
overwritten; the Hub is tests/support/hub_server.py's LocalHub.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file, save_file

from pipelines.context import AppContext
from tests.support.apps import install_models, make_settings
from tests.support.hub_server import LocalHub
from tests.support.tiny_networks import save_embedding, save_kohya_lora, save_vae_file
from webui.api import ApiConfig, create_api_app

JOB = {"prompt": "a teapot", "steps": 1, "width": 64, "height": 64, "seed": 5, "sampler_name": "Euler"}


def cut_short(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def pickled_copy(folder: Path, target: Path) -> Path:
    """``folder`` (a diffusers pipeline) with every .safetensors file saved as a pickled .bin instead."""
    shutil.copytree(folder, target)
    for weights in list(target.rglob("*.safetensors")):
        name = "diffusion_pytorch_model.bin" if weights.stem.startswith("diffusion") else "pytorch_model.bin"
        torch.save(load_file(str(weights)), weights.with_name(name))
        weights.unlink()
    return target


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, model_store) -> Iterator[dict]:
    data = tmp_path_factory.mktemp("faults-data")
    repos = tmp_path_factory.mktemp("faults-repos")
    install_models(model_store, data, ["tiny-sd15", "tiny-sd15-file.safetensors"])
    checkpoints = data / "models" / "Stable-diffusion"
    # (a) a single file cut short, beside a sidecar config that would otherwise load it
    shutil.copy(checkpoints / "tiny-sd15-file.safetensors", checkpoints / "cut.safetensors")
    shutil.copytree(checkpoints / "tiny-sd15-file.config", checkpoints / "cut.config")
    cut_short(checkpoints / "cut.safetensors")
    # (b) bytes that are no safetensors file at all
    (checkpoints / "junk.safetensors").write_bytes(b"<html>Error 502 Bad Gateway</html>" * 40)
    # (c) a diffusers folder (its UNet is cut after listing), (g) one deleted after listing
    shutil.copytree(model_store / "tiny-sd15", checkpoints / "cutdir")
    shutil.copytree(model_store / "tiny-sd15", checkpoints / "gone")
    # (d) a LoRA and a VAE cut short
    cut_short(save_kohya_lora(data / "models" / "Lora" / "cut-lora.safetensors"))
    cut_short(save_vae_file(data / "models" / "VAE" / "cut-vae.safetensors"))
    # ... and whole ones, cut after listing
    save_kohya_lora(data / "models" / "Lora" / "late-lora.safetensors")
    save_vae_file(data / "models" / "VAE" / "late-vae.safetensors")
    save_embedding(data / "embeddings" / "late-emb.safetensors")
    # (e) a text model's repo, (f) a pipeline with pickled weights only, a repo with only a .ckpt
    text = repos / "text-model"
    text.mkdir()
    (text / "config.json").write_text('{"architectures": ["BertModel"], "model_type": "bert"}')
    save_file({"embeddings.word_embeddings.weight": torch.zeros(8, 4)}, str(text / "model.safetensors"))
    pickled = pickled_copy(model_store / "tiny-sd15", repos / "pickled-sd15")
    ckpt = repos / "ckpt-only"
    ckpt.mkdir()
    torch.save({"state_dict": {"x": torch.zeros(2)}}, ckpt / "model.ckpt")
    flux = repos / "flux"  # another pipeline: its index is all that is fetched
    (flux / "transformer").mkdir(parents=True)
    (flux / "model_index.json").write_text('{"_class_name": "FluxPipeline", "transformer": ["diffusers", '
                                           '"FluxTransformer2DModel"]}')
    save_file({"x": torch.zeros(4)}, str(flux / "transformer" / "diffusion_pytorch_model.safetensors"))
    with LocalHub() as hub:
        hub.add_repo("atelier-test/text-model", text)
        hub.add_repo("atelier-test/pickled-sd15", pickled)
        hub.add_repo("atelier-test/ckpt-only", ckpt)
        hub.add_repo("atelier-test/flux", flux)
        ctx = AppContext.build(make_settings(data, initial_model="tiny-sd15", hub_offline=False,
                                             hf_endpoint=hub.endpoint))
        with TestClient(create_api_app(ctx, ApiConfig()), base_url="http://testserver/sdapi/v1") as api:
            assert api.post("/txt2img", json=JOB).status_code == 200  # the good model, loaded once
            yield {"api": api, "ctx": ctx, "hub": hub, "checkpoints": checkpoints}


def still_serving(api: TestClient) -> None:
    """The selection is unchanged and the next job runs on it."""
    assert api.get("/options").json()["sd_model_checkpoint"].startswith("tiny-sd15 [")
    assert api.post("/txt2img", json=JOB).status_code == 200


@pytest.mark.parametrize(("name", "says"), [
    ("cut", r"cut\.safetensors is damaged or cut short \(its header says .* of tensors, the file has .*\)"),
    ("junk", r"junk\.safetensors is not a safetensors file"),
])
def test_broken_checkpoint_file_is_refused_naming_the_option(faulty, name, says):
    api = faulty["api"]
    assert name not in {m["model_name"] for m in api.get("/sd-models").json()}
    response = api.post("/options", json={"sd_model_checkpoint": name})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("sd_model_checkpoint: ") and "download it again" in detail
    assert re.search(says, detail), detail
    still_serving(api)


def test_folder_damaged_after_listing_is_refused_in_a_job_and_the_next_job_runs(faulty):
    api, checkpoints = faulty["api"], faulty["checkpoints"]
    cut_short(checkpoints / "cutdir" / "unet" / "diffusion_pytorch_model.safetensors", keep=0.8)
    body = {**JOB, "override_settings": {"sd_model_checkpoint": "cutdir"}}
    response = api.post("/txt2img", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("override_settings.sd_model_checkpoint: ")
    assert "unet/diffusion_pytorch_model.safetensors is damaged or cut short" in detail
    assert faulty["ctx"].store.loaded("cutdir") is None  # nothing half-built left in the cache
    still_serving(api)
    api.post("/refresh-checkpoints")  # the rescan marks it, so it is no longer offered
    assert "cutdir" not in {m["model_name"] for m in api.get("/sd-models").json()}


def test_damaged_lora_and_vae_name_their_fields(faulty):
    api = faulty["api"]
    lora = api.post("/txt2img", json={**JOB, "prompt": "a teapot <lora:cut-lora:0.5>"})
    assert lora.status_code == 422, lora.text
    assert lora.json()["detail"].startswith("prompt: <lora:cut-lora>: cut-lora.safetensors is damaged or cut short")
    vae = api.post("/txt2img", json={**JOB, "override_settings": {"sd_vae": "cut-vae.safetensors"}})
    assert vae.status_code == 422, vae.text
    assert vae.json()["detail"].startswith("override_settings.sd_vae: cut-vae.safetensors is damaged or cut short")
    still_serving(api)


def test_lora_vae_and_embedding_damaged_after_listing(faulty):
    api, data = faulty["api"], faulty["checkpoints"].parents[1]
    for path in (data / "models" / "Lora" / "late-lora.safetensors", data / "models" / "VAE" / "late-vae.safetensors",
                 data / "embeddings" / "late-emb.safetensors"):
        cut_short(path)
    lora = api.post("/txt2img", json={**JOB, "prompt": "a teapot <lora:late-lora:0.5>"})
    assert lora.status_code == 422, lora.text
    assert lora.json()["detail"].startswith("prompt: <lora:late-lora>: late-lora.safetensors is damaged or cut short")
    vae = api.post("/txt2img", json={**JOB, "override_settings": {"sd_vae": "late-vae.safetensors"}})
    assert vae.status_code == 422, vae.text
    assert "sd_vae: late-vae.safetensors is damaged or cut short" in vae.json()["detail"]  # as a job names a misfit
    # a broken embedding is skipped, as A1111 skips embeddings it cannot use; the job runs
    assert api.post("/txt2img", json={**JOB, "prompt": "a teapot, late-emb"}).status_code == 200
    still_serving(api)


def test_model_folder_deleted_while_listed_says_so_and_refresh_drops_it(faulty):
    api = faulty["api"]
    assert "gone" in {m["model_name"] for m in api.get("/sd-models").json()}
    shutil.rmtree(faulty["checkpoints"] / "gone")
    response = api.post("/options", json={"sd_model_checkpoint": "gone"})
    assert response.status_code == 404, response.text
    detail = response.json()["detail"]
    assert detail.startswith("sd_model_checkpoint: ") and "no longer on disk" in detail and "Refresh" in detail
    still_serving(api)
    assert api.post("/refresh-checkpoints").status_code == 200
    assert "gone" not in {m["model_name"] for m in api.get("/sd-models").json()}


def test_hub_repo_that_is_not_a_stable_diffusion_model_is_refused_before_any_download(faulty):
    api, hub = faulty["api"], faulty["hub"]
    hub.clear_log()
    response = api.post("/options", json={"sd_model_checkpoint": "atelier-test/text-model"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("sd_model_checkpoint: atelier-test/text-model is not a Stable Diffusion model: ")
    assert "model_index.json" in detail
    assert not [path for method, path, _ in hub.log_snapshot() if "/resolve/" in path]  # not one file fetched
    flux = api.post("/options", json={"sd_model_checkpoint": "atelier-test/flux"})
    assert flux.status_code == 422, flux.text
    assert "atelier-test/flux is not a Stable Diffusion model: its pipeline is 'FluxPipeline'" in flux.json()["detail"]
    assert not [path for _, path, _ in hub.log_snapshot() if path.endswith(".safetensors")]
    still_serving(api)


@pytest.mark.parametrize(("repo", "says"), [
    ("atelier-test/pickled-sd15", "only pickled weights"),
    ("atelier-test/ckpt-only", "only pickled weights (model.ckpt)"),
])
def test_hub_repo_with_only_pickled_weights_is_refused_naming_allow_pickle(faulty, repo, says):
    api, hub = faulty["api"], faulty["hub"]
    hub.clear_log()
    response = api.post("/options", json={"sd_model_checkpoint": repo})
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"sd_model_checkpoint: {repo} has ") and says in detail and "--allow-pickle" in detail
    assert not [path for _, path, _ in hub.log_snapshot() if path.endswith((".bin", ".ckpt"))]
    still_serving(api)


def test_models_tab_download_of_an_unsupported_repo_says_why(faulty):
    """The Models tab's download (store.download) meets the same checks as selecting the repo."""
    from pipelines.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="is not a Stable Diffusion model"):
        faulty["ctx"].store.download("atelier-test/text-model")
