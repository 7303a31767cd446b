"""POST /sdapi/v1/img2img over HTTP on tiny models: round trip and the A1111 errors (masks: test_inpaint_api.py)."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from tests.support.api import FAST


def b64_png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert image.format == "PNG"
    return image


SOURCE = Image.new("RGBA", (96, 64), (30, 120, 220, 255))


def test_png_round_trip(api):
    response = api.post("/img2img", json={**FAST, "init_images": [b64_png(SOURCE)], "denoising_strength": 0.6,
                                          "resize_mode": 1, "width": 64, "height": 64})
    assert response.status_code == 200, response.text
    body = response.json()
    info = json.loads(body["info"])
    image = decode(body["images"][0])
    assert image.size == (64, 64)
    assert image.info["parameters"] == info["infotexts"][0]
    assert "Denoising strength: 0.6" in info["infotexts"][0] and info["denoising_strength"] == 0.6
    assert info["all_seeds"] == [11] and info["sampler_name"] == "Euler a"
    assert body["parameters"]["init_images"] is None and body["parameters"]["resize_mode"] == 1
    assert "include_init_images" not in body["parameters"]


def test_data_uri_same_seed_same_image_and_parameters_echo_when_asked(api):
    data = "data:image/png;base64," + b64_png(SOURCE)
    first = api.post("/img2img", json={**FAST, "init_images": [data], "include_init_images": True}).json()
    again = api.post("/img2img", json={**FAST, "init_images": [b64_png(SOURCE)]}).json()
    assert first["images"] == again["images"]
    assert first["parameters"]["init_images"] == [data]
    assert json.loads(first["info"])["denoising_strength"] == 0.75  # A1111's default


@pytest.mark.parametrize("init_images", [None, [], [""]])
def test_without_init_image_404(api, init_images):
    body = {**FAST} if init_images is None else {**FAST, "init_images": init_images}
    response = api.post("/img2img", json=body)
    assert response.status_code == 404
    assert response.json()["detail"] == "Init image not found"


@pytest.mark.parametrize(("fields", "field"), [
    ({"init_images": ["bm90IGFuIGltYWdl"]}, "init_images.0"),
    ({"denoising_strength": 1.5}, "denoising_strength"),
    ({"resize_mode": 4}, "resize_mode"),
    ({"width": 65}, "width"),
    ({"enable_hr": True}, None),  # not an img2img field: ignored, as any unknown field
])
def test_bad_fields_are_422_naming_them(api, fields, field):
    response = api.post("/img2img", json={**FAST, "init_images": [b64_png(SOURCE)], **fields})
    if field is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(field + ":")
