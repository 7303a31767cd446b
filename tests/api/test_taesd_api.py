"""TAESD and the fast preset over HTTP on the shared API app: ``sd_vae_decode_method`` per request through
``override_settings`` (a saved PNG whose infotext says so and whose pixels are TAESD's), a missing TAESD as a 422,
``GET /atelier/v1/presets/fast``, and an LCM-sampler image that reproduces from its PNG Info."""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support.api import API_USER, FAST
from tests.support.tiny_loras import save_kohya_lora_for
from tests.support.tiny_taesd import save_tiny_taesd

LCM_LORA = "lcm-lora-sdv1-5"


def saved(data_dir: Path) -> set[Path]:
    return set((data_dir / "outputs" / "txt2img-images").glob("*/*.png"))


def generate(api: httpx.Client, data_dir: Path, **fields) -> tuple[Path, np.ndarray]:
    """One saved image: its file and pixels."""
    before = saved(data_dir)
    response = api.post("/txt2img", json={**FAST, "save_images": True, **fields})
    assert response.status_code == 200, response.text
    (path,) = saved(data_dir) - before
    return path, np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def atelier(api_app) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_app["url"] + "atelier/v1", auth=API_USER, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def installed(api_app, model_store) -> Iterator[Path]:
    """A tiny TAESD in the shared app's models/VAE-taesd and an LCM-LoRA in models/Lora, for this module only."""
    data = api_app["data_dir"]
    taesd = save_tiny_taesd(data / "models" / "VAE-taesd" / "taesd", seed=1)
    lora = save_kohya_lora_for(model_store / "tiny-sd15", data / "models" / "Lora" / f"{LCM_LORA}.safetensors",
                               seed=3, std=0.01)
    api_app["ctx"].store.refresh()
    try:
        yield data
    finally:
        shutil.rmtree(taesd.parent)
        lora.unlink()
        api_app["ctx"].store.refresh()


def test_a_missing_taesd_or_an_unknown_method_is_a_422_naming_the_setting(api):
    missing = api.post("/txt2img", json={**FAST, "override_settings": {"sd_vae_decode_method": "TAESD"}})
    assert missing.status_code == 422
    assert "sd_vae_decode_method" in missing.text and "madebyollin/taesd" in missing.text
    assert "VAE-taesd" in missing.text
    unknown = api.post("/txt2img", json={**FAST, "override_settings": {"sd_vae_decode_method": "Tiny"}})
    assert unknown.status_code == 422 and "override_settings.sd_vae_decode_method" in unknown.text


def test_override_settings_decodes_with_taesd_into_a_saved_png_that_says_so(api, api_app, installed):
    full_path, full = generate(api, installed)
    tiny_path, tiny = generate(api, installed, override_settings={"sd_vae_decode_method": "TAESD"})
    info = Image.open(tiny_path).info["parameters"]
    assert "VAE Decoder: TAESD" in info and "VAE Decoder" not in Image.open(full_path).info["parameters"]
    assert not np.array_equal(tiny, full)
    assert api.get("/options").json()["sd_vae_decode_method"] == "Full"  # for that request only
    _, again = generate(api, installed, infotext=info)  # the infotext's decoder is the request's
    assert np.array_equal(again, tiny)


def test_the_fast_preset_route_and_an_lcm_image_that_reproduces_from_png_info(api, atelier, installed):
    refused = atelier.get("/presets/fast", params={"model": "tiny-sd15"})
    assert refused.status_code == 422 and "model" in refused.text and "few-step" in refused.text
    prompt = f"a teapot <lora:{LCM_LORA}:1>"
    preset = atelier.get("/presets/fast", params={"model": "tiny-sd15", "prompt": prompt})
    assert preset.status_code == 200, preset.text
    body = preset.json()
    assert {k: body[k] for k in ("family", "steps", "cfg_scale", "sampler_name", "sd_vae_decode_method")} == \
        {"family": "LCM", "steps": 4, "cfg_scale": 1.0, "sampler_name": "LCM", "sd_vae_decode_method": "TAESD"}
    fields = {"prompt": prompt, "steps": body["steps"], "cfg_scale": body["cfg_scale"],
              "sampler_name": body["sampler_name"], "scheduler": body["scheduler"], "seed": 21,
              "override_settings": {"sd_vae_decode_method": body["sd_vae_decode_method"]}}
    path, pixels = generate(api, installed, **fields)
    encoded = base64.b64encode(path.read_bytes()).decode()
    info = api.post("/png-info", json={"image": encoded}).json()
    assert info["parameters"]["Sampler"] == "LCM" and "Sampler: LCM" in info["info"]
    assert "VAE Decoder: TAESD" in info["info"] and "Lora hashes" in info["info"]
    response = api.post("/txt2img", json={"infotext": info["info"]})  # every field from the PNG Info
    assert response.status_code == 200, response.text
    first = Image.open(io.BytesIO(base64.b64decode(response.json()["images"][0]))).convert("RGB")
    assert np.array_equal(np.asarray(first), pixels)
    assert json.loads(response.json()["info"])["sampler_name"] == "LCM"
