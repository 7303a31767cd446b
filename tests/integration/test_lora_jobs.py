"""LoRAs named in prompts, through the engine and the REST API: applied for the job, written, removed after."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import ValidationError
from pipelines.models.kinds import ModelType
from pipelines.requests import HiresFix, Img2ImgRequest, Txt2ImgRequest
from tests.support.tiny_loras import save_kohya_lora_for, save_peft_lora_for

BASE = Txt2ImgRequest(prompt="a fox", width=64, height=64, steps=3, seed=8, sampler_name="Euler", save_images=False)


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image)


@pytest.fixture
def ctx(app_context, model_store):
    lora_dir = app_context.settings.models_dir / "Lora"
    save_kohya_lora_for(model_store / "tiny-sd15", lora_dir / "inkwash.safetensors", seed=1)
    save_peft_lora_for(model_store / "tiny-sd15", lora_dir / "glow.safetensors", seed=2)
    app_context.store.refresh()
    return app_context


def test_a_lora_in_the_prompt_changes_the_image_and_is_gone_after(ctx):
    before = pixels(ctx.engine.generate(BASE))
    with_lora = ctx.engine.generate(replace(BASE, prompt="a fox <lora:inkwash:0.8>"))
    text = with_lora.images[0].infotext
    record = ctx.store.hashed(ctx.store.find("inkwash", ModelType.LORA))
    assert text.startswith("a fox <lora:inkwash:0.8>\n")  # the prompt keeps its tag, so pasting re-applies it
    assert f'Lora hashes: "inkwash: {record.addnet_hash[:12]}"' in text
    assert not np.array_equal(pixels(with_lora), before)
    assert np.array_equal(pixels(ctx.engine.generate(BASE)), before)  # removed: the next job is as before


def test_loras_stack_apply_in_every_mode_and_in_the_negative(ctx):
    one = pixels(ctx.engine.generate(replace(BASE, prompt="a fox <lora:inkwash>")))
    both = ctx.engine.generate(replace(BASE, prompt="a fox <lora:inkwash>", negative_prompt="<lora:glow:0.7>"))
    assert not np.array_equal(pixels(both), one)
    assert "inkwash: " in both.images[0].infotext and "glow: " in both.images[0].infotext
    init = ctx.engine.generate(BASE).images[0].image
    img2img = Img2ImgRequest(prompt="a fox", init_image=init, width=64, height=64, steps=3, seed=2,
                             denoising_strength=0.7, save_images=False)
    assert not np.array_equal(pixels(ctx.engine.generate(img2img)),
                              pixels(ctx.engine.generate(replace(img2img, prompt="a fox <lora:glow>"))))
    hires = replace(BASE, hires=HiresFix(hr_scale=1.25, hr_upscaler="Latent", hr_second_pass_steps=2))
    assert not np.array_equal(pixels(ctx.engine.generate(hires)),
                              pixels(ctx.engine.generate(replace(hires, prompt="a fox <lora:glow>"))))


def test_unknown_and_mismatched_loras_are_prompt_errors(ctx):
    from tests.support.tiny_networks import save_kohya_lora

    with pytest.raises(ValidationError, match="did you mean 'inkwash'") as err:
        ctx.engine.generate(replace(BASE, prompt="a fox <lora:inkwas>"))
    assert err.value.field == "prompt"
    save_kohya_lora(ctx.settings.models_dir / "Lora" / "xl-only.safetensors", context_width=2048, sdxl=True)
    ctx.store.refresh()
    with pytest.raises(ValidationError, match="SDXL"):
        ctx.engine.generate(replace(BASE, prompt="a fox <lora:xl-only>"))
    assert ctx.engine.generate(BASE).images  # nothing was left applied


def test_the_rest_api_takes_a_lora_prompt(ctx):
    from fastapi.testclient import TestClient

    from webui.api.app import ApiConfig, create_api_app

    client = TestClient(create_api_app(ctx, ApiConfig()))
    body = {"prompt": "a fox <lora:inkwash:0.8>", "steps": 3, "width": 64, "height": 64, "seed": 8,
            "sampler_name": "Euler", "save_images": False}
    response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    assert "Lora hashes" in info["infotexts"][0]
    image = np.asarray(Image.open(BytesIO(base64.b64decode(response.json()["images"][0]))).convert("RGB"))
    expected = pixels(ctx.engine.generate(replace(BASE, prompt="a fox <lora:inkwash:0.8>")))
    assert np.array_equal(image, expected)
    bad = client.post("/sdapi/v1/txt2img", json={**body, "prompt": "<lora:nope>"})
    assert bad.status_code == 422 and "prompt" in bad.json()["detail"]
    listed = {item["name"]: item for item in client.get("/sdapi/v1/loras").json()}
    assert set(listed) == {"inkwash", "glow"}
    assert listed["inkwash"]["path"].endswith("models/Lora/inkwash.safetensors") and listed["inkwash"]["alias"]
