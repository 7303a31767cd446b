"""An unconditional DDPM model over the A1111 API: listed after a refresh, generated with DDPM at its own size,
reproducible by seed, with a 422 naming sampler_name for a text-to-image sampler."""

from __future__ import annotations

import base64
import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pipelines.context import AppContext
from tests.support.apps import install_models, make_settings
from tests.support.tiny_seed_models import save_ddpm_folder
from webui.api import ApiConfig, create_api_app

JOB = {"prompt": "", "sampler_name": "DDPM", "steps": 2, "seed": 11, "batch_size": 2,
       "override_settings": {"sd_model_checkpoint": "tiny-ddpm"}}


@pytest.fixture(scope="module")
def api(tmp_path_factory, model_store):
    # Its own data dir and app: a checkpoint added to the shared server would show in every later test.
    data_dir = tmp_path_factory.mktemp("unconditional-api")
    install_models(model_store, data_dir, ["tiny-sd15"])
    app = create_api_app(AppContext.build(make_settings(data_dir, initial_model="tiny-sd15")), ApiConfig())
    with TestClient(app, base_url="http://testserver/sdapi/v1") as client:
        client.data_dir = data_dir
        yield client


def _images(body: dict) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b64))) for b64 in body["images"]]


def test_installed_model_is_listed_after_refresh_and_generates_at_its_size(api):
    save_ddpm_folder(api.data_dir / "models" / "Stable-diffusion" / "tiny-ddpm")
    assert "tiny-ddpm" not in {m["model_name"] for m in api.get("/sd-models").json()}
    assert api.post("/refresh-checkpoints").status_code == 200
    assert "tiny-ddpm" in {m["model_name"] for m in api.get("/sd-models").json()}

    first = api.post("/txt2img", json=JOB)
    assert first.status_code == 200, first.text
    body, info = first.json(), json.loads(first.json()["info"])
    assert [im.size for im in _images(body)][:2] == [(16, 16), (16, 16)]
    assert info["width"] == 16 and info["all_seeds"] == [11, 12] and info["sampler_name"] == "DDPM"
    assert "Sampler: DDPM" in info["infotexts"][0] and "Seed: 12" in info["infotexts"][1]
    again = api.post("/txt2img", json={**JOB, "batch_size": 1}).json()
    assert _images(again)[0].tobytes() == _images(body)[0].tobytes()  # same seed, same image


def test_text_to_image_sampler_is_a_422_naming_sampler_name(api):
    save_ddpm_folder(api.data_dir / "models" / "Stable-diffusion" / "tiny-ddpm-b", seed=3)
    api.post("/refresh-checkpoints")
    response = api.post("/txt2img", json={**JOB, "sampler_name": "Euler",
                                          "override_settings": {"sd_model_checkpoint": "tiny-ddpm-b"}})
    assert response.status_code == 422, response.text
    assert "sampler_name" in response.text and "DDPM or DDIM" in response.text
