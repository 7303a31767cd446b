"""Hires fix over real HTTP: enable_hr + hr_* fields -> an image at the hires size, A1111's info keys, 422s."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from pipelines.infotext.codec import parse_infotext
from tests.support.api import FAST

HIRES = {"enable_hr": True, "hr_scale": 2, "hr_upscaler": "Latent", "hr_second_pass_steps": 2,
         "denoising_strength": 0.6}


def _post(api, **fields) -> tuple[list[Image.Image], dict, dict]:
    response = api.post("/txt2img", json={**FAST, **fields})
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    images = [Image.open(io.BytesIO(base64.b64decode(b64))) for b64 in body["images"]]
    return images, json.loads(body["info"]), body["parameters"]


def test_enable_hr_returns_the_image_at_the_hires_size_with_a1111_keys(api):
    images, info, parameters = _post(api, **HIRES)
    assert images[0].size == (128, 128)
    assert (info["width"], info["height"]) == (64, 64)  # the first pass's size, as A1111's Processed
    assert info["denoising_strength"] == 0.6
    assert info["extra_generation_params"] == {"Hires upscale": 2, "Hires steps": 2, "Hires upscaler": "Latent"}
    text = info["infotexts"][0]
    assert images[0].info["parameters"] == text
    assert "Size: 64x64" in text and "Denoising strength: 0.6" in text
    assert "Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent" in text
    assert parameters["enable_hr"] is True and parameters["hr_second_pass_steps"] == 2


def test_without_enable_hr_the_hr_fields_change_nothing(api):
    plain, info, _ = _post(api, hr_scale=3, hr_upscaler="Lanczos", denoising_strength=0.3)
    assert plain[0].size == (64, 64) and "Hires" not in info["infotexts"][0]
    assert info["extra_generation_params"] == {}


def test_resize_x_alone_keeps_the_aspect_ratio_and_lanczos_works(api):
    images, info, _ = _post(api, **{**HIRES, "width": 96, "height": 64, "hr_resize_x": 144,
                                    "hr_upscaler": "Lanczos", "hr_sampler_name": "DPM++ 2M"})
    assert images[0].size == (144, 96)
    params = parse_infotext(info["infotexts"][0])
    assert params["Hires resize"] == "144x0" and params["Hires upscaler"] == "Lanczos"
    assert params["Hires sampler"] == "DPM++ 2M" and "Hires upscale" not in params


def test_null_hr_fields_take_the_defaults(api):
    images, info, _ = _post(api, enable_hr=True, hr_upscaler=None, hr_scale=None, denoising_strength=None,
                            hr_second_pass_steps=1)
    assert images[0].size == (128, 128)
    params = parse_infotext(info["infotexts"][0])
    assert params["Hires upscaler"] == "Latent" and params["Denoising strength"] == "0.7"


def test_infotext_field_turns_hires_on(api):
    infotext = ("a teapot\nSteps: 3, Sampler: Euler a, CFG scale: 7, Seed: 11, Size: 64x64, Denoising strength: 0.5, "
                "Hires resize: 96x96, Hires steps: 1, Hires upscaler: Latent (nearest)")
    images, info, _ = _post(api, infotext=infotext)
    assert images[0].size == (96, 96)
    assert parse_infotext(info["infotexts"][0])["Hires upscaler"] == "Latent (nearest)"
    sent_off, _, _ = _post(api, infotext=infotext, enable_hr=False)  # a field the client sets wins
    assert sent_off[0].size == (64, 64)


def test_latent_upscale_modes_lists_a1111_names(api):
    names = [m["name"] for m in api.get("/latent-upscale-modes").json()]
    assert names[0] == "Latent" and "Latent (nearest-exact)" in names and len(names) == 6


@pytest.mark.parametrize(("fields", "field"), [
    ({"hr_upscaler": "Mystery 9x"}, "hr_upscaler"),
    ({"hr_scale": 0.5}, "hr_scale"),
    ({"hr_resize_x": 32}, "hr_resize_x"),
    ({"hr_resize_y": 99999}, "hr_resize_y"),
    ({"denoising_strength": 0}, "denoising_strength"),
    ({"denoising_strength": 2}, "denoising_strength"),
    ({"hr_second_pass_steps": 500}, "hr_second_pass_steps"),
    ({"hr_sampler_name": "Nope"}, "hr_sampler_name"),
    ({"hr_scheduler": "Wobbly"}, "hr_scheduler"),
    ({"hr_checkpoint_name": "tiny-sd15-b"}, "hr_checkpoint_name"),
    ({"firstpass_image": "aGVsbG8="}, "firstpass_image"),
])
def test_bad_hires_values_are_422_naming_the_a1111_field(api, fields, field):
    response = api.post("/txt2img", json={**FAST, **HIRES, **fields})
    assert response.status_code == 422, response.text[:500]
    body = response.json()
    assert body["errors"].startswith(field) or str(body["detail"]).startswith(field), body
