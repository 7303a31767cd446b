"""POST /sdapi/v1/img2img with a mask over real HTTP: inpainting keeps every unmasked pixel, A1111's
inpaint fields and their errors, and the unmodified webuiapi client's ``mask_image``."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import urlparse

import numpy as np
import pytest
import webuiapi
from PIL import Image

from pipelines.imaging import masks
from tests.support.api import API_USER, FAST


def b64_png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


SOURCE = Image.fromarray(np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
MASK = Image.new("L", (64, 64), 0)
MASK.paste(255, (20, 16, 44, 40))


def keep_area(blur: int) -> np.ndarray:
    """Pixels the blurred mask does not reach: they must come back exactly as sent."""
    return pixels(masks.overlay_mask(masks.blur(MASK, blur)).convert("RGB"))[..., 0] == 0


@pytest.mark.parametrize("whole_picture", [False, True])
def test_mask_repaints_inside_and_returns_the_rest_exactly(api, whole_picture):
    body = {**FAST, "init_images": [b64_png(SOURCE)], "mask": b64_png(MASK), "mask_blur": 2,
            "inpaint_full_res": not whole_picture, "inpaint_full_res_padding": 8, "inpainting_fill": 1}
    response = api.post("/img2img", json=body)
    assert response.status_code == 200, response.text
    image = pixels(decode(response.json()["images"][0]))
    keep = keep_area(2)
    assert keep.sum() > 2000
    assert np.array_equal(image[keep], pixels(SOURCE)[keep])
    assert not np.array_equal(image[~keep], pixels(SOURCE)[~keep])
    infotext = json.loads(response.json()["info"])["infotexts"][0]
    assert "Mask blur: 2" in infotext
    assert ("Inpaint area: Only masked" in infotext) is (not whole_picture)
    assert response.json()["parameters"]["mask"] is None  # not echoed back, as in A1111


def test_a1111_api_defaults_fill_and_only_masked(api):
    response = api.post("/img2img", json={**FAST, "init_images": [b64_png(SOURCE)], "mask": b64_png(MASK)})
    assert response.status_code == 200, response.text
    infotext = json.loads(response.json()["info"])["infotexts"][0]
    assert "Mask blur: 4" in infotext and "Masked content: fill" in infotext
    assert "Inpaint area: Only masked, Masked area padding: 0" in infotext


def test_mask_blur_x_is_used_without_mask_blur_and_invert_is_recorded(api):
    body = {**FAST, "init_images": [b64_png(SOURCE)], "mask": b64_png(MASK), "mask_blur_x": 3,
            "inpainting_mask_invert": 1, "inpainting_fill": 2, "inpaint_full_res": False}
    infotext = json.loads(api.post("/img2img", json=body).json()["info"])["infotexts"][0]
    assert "Mask blur: 3" in infotext and "Mask mode: Inpaint not masked" in infotext
    assert "Masked content: latent noise" in infotext


@pytest.mark.parametrize(("fields", "field", "status"), [
    ({"mask": "bm90IGFuIGltYWdl"}, "mask", 422),
    ({"mask": b64_png(Image.new("L", (64, 64), 0))}, "mask", 422),  # all black: nothing to repaint
    ({"mask": b64_png(Image.new("L", (32, 64), 255))}, "mask", 422),  # another shape than the image
    ({"mask": b64_png(MASK), "inpainting_fill": 7}, "inpainting_fill", 422),
    ({"mask": b64_png(MASK), "mask_blur": -2}, "mask_blur", 422),
    ({"mask": b64_png(MASK), "inpainting_mask_invert": 3}, "inpainting_mask_invert", 422),
    ({"mask": b64_png(MASK), "inpaint_full_res_padding": -1}, "inpaint_full_res_padding", 422),
    ({"latent_mask": b64_png(MASK)}, "latent_mask", 422),
    ({"initial_noise_multiplier": 0.5}, "initial_noise_multiplier", 422),
])
def test_bad_inpaint_fields_are_4xx_naming_them(api, fields, field, status):
    response = api.post("/img2img", json={**FAST, "init_images": [b64_png(SOURCE)], **fields})
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(field + ":")


def test_webuiapi_client_inpaints_with_mask_image(api_app):
    url = urlparse(api_app["url"])
    client = webuiapi.WebUIApi(host=url.hostname, port=url.port, sampler="Euler a", steps=3,
                               username=API_USER[0], password=API_USER[1])
    result = client.img2img(images=[SOURCE], mask_image=MASK, prompt="a red fox", width=64, height=64, seed=9,
                            denoising_strength=0.8, mask_blur=2)
    image = pixels(result.image)
    keep = keep_area(2)
    assert np.array_equal(image[keep], pixels(SOURCE)[keep])
    assert not np.array_equal(image[~keep], pixels(SOURCE)[~keep])
    assert "Masked content: fill" in result.image.info["parameters"]  # webuiapi's default, as A1111's API
