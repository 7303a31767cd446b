"""/sdapi/v1/extra-single-image, /extra-batch-images and /upscalers over real HTTP, and with webuiapi."""

from __future__ import annotations

import base64
import io
from urllib.parse import urlparse

import numpy as np
import pytest
import webuiapi
from PIL import Image

from pipelines.outputs import png_info
from tests.support.api import API_USER
from tests.support.tiny_upscalers import save_rrdbnet


@pytest.fixture(scope="module")
def esrgan(api_app):
    """A tiny 4x ESRGAN file in the server's models/ESRGAN for this module only."""
    path = save_rrdbnet(api_app["data_dir"] / "models" / "ESRGAN" / "4x-api-tiny.safetensors", scale=4)
    upscalers = api_app["ctx"].upscalers
    upscalers.refresh()
    try:
        yield "4x-api-tiny"
    finally:
        path.unlink()
        upscalers.refresh()


def b64(image: Image.Image, infotext: str | None = None) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(infotext) if infotext else None)
    return base64.b64encode(buffer.getvalue()).decode()


def decoded(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_upscalers_lists_model_files(api, esrgan):
    items = {u["name"]: u for u in api.get("/upscalers").json()}
    assert list(items)[:3] == ["None", "Lanczos", "Nearest"]
    assert items[esrgan]["scale"] == 4 and items[esrgan]["model_path"].endswith("4x-api-tiny.safetensors")
    assert items[esrgan]["model_url"] is None


def test_extra_single_image_with_a_model(api, api_app, esrgan):
    source = Image.new("RGB", (20, 12), (30, 120, 200))
    body = {"image": b64(source, "a boat\nSteps: 3, Sampler: Euler, Seed: 9, Size: 20x12"), "upscaler_1": esrgan,
            "upscaling_resize": 2}
    response = api.post("/extra-single-image", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    image = decoded(data["image"])
    assert image.size == (40, 24)
    expected = "a boat\nSteps: 3, Sampler: Euler, Seed: 9, Size: 20x12, Postprocess upscale by: 2, " \
               f"Postprocess upscaler: {esrgan}"
    assert image.info["parameters"] == expected
    assert "Postprocess upscaler: " + esrgan in data["html_info"]
    saved = sorted((api_app["data_dir"] / "outputs" / "extras-images").rglob("*.png"))
    assert saved and Image.open(saved[-1]).size == (40, 24)


def test_extra_batch_images_to_size(api):
    sources = [Image.new("RGB", (16, 8), (255, 0, 0)), Image.new("RGB", (10, 10), (0, 255, 0))]
    body = {"imageList": [{"data": b64(img), "name": f"img{i}.png"} for i, img in enumerate(sources)],
            "resize_mode": 1, "upscaling_resize_w": 32, "upscaling_resize_h": 24, "upscaling_crop": True,
            "upscaler_1": "Lanczos", "upscaler_2": "Nearest", "extras_upscaler_2_visibility": 0.5}
    response = api.post("/extra-batch-images", json=body)
    assert response.status_code == 200, response.text
    images = [decoded(d) for d in response.json()["images"]]
    assert [i.size for i in images] == [(32, 24), (32, 24)]
    assert np.asarray(images[1].convert("RGB"))[12, 16].tolist() == [0, 255, 0]
    assert images[0].info["parameters"] == (
        "Postprocess upscale to: 32x24, Postprocess crop to: 32x24, Postprocess upscaler: Lanczos, "
        "Postprocess upscaler 2: Nearest, Postprocess upscaler 2 visibility: 0.5")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/extra-single-image", {"image": "", "upscaler_1": "Lanczos"}, "image"),
    ("/extra-single-image", {"image": "not base64!", "upscaler_1": "Lanczos"}, "image"),
    ("/extra-single-image", {"image": "<img>", "upscaler_1": "R-ESRGAN 4x+"}, "upscaler_1"),
    ("/extra-single-image", {"image": "<img>", "upscaler_2": "nope", "extras_upscaler_2_visibility": 1}, "upscaler_2"),
    ("/extra-single-image", {"image": "<img>", "upscaling_resize": 0}, "upscaling_resize"),
    ("/extra-single-image", {"image": "<img>", "resize_mode": 3}, "resize_mode"),
    ("/extra-single-image", {"image": "<img>", "gfpgan_visibility": 0.5}, "gfpgan_visibility"),
    ("/extra-single-image", {"image": "<img>", "extras_upscaler_2_visibility": 2}, "extras_upscaler_2_visibility"),
    ("/extra-batch-images", {"imageList": []}, "imageList"),
    ("/extra-batch-images", {"imageList": [{"data": "<img>"}, {"data": "eHl6"}]}, "imageList.1.data"),
])
def test_bad_input_is_422_naming_the_field(api, path, body, field):
    image = b64(Image.new("RGB", (8, 8)))
    body = {k: (image if v == "<img>" else v) for k, v in body.items()}
    if "imageList" in body:
        body["imageList"] = [{"data": image if i["data"] == "<img>" else i["data"]} for i in body["imageList"]]
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"]


def test_webuiapi_client_extras(api_app, esrgan):
    url = urlparse(api_app["url"])
    client = webuiapi.WebUIApi(host=url.hostname, port=url.port, username=API_USER[0], password=API_USER[1])
    source = Image.new("RGB", (12, 10), (90, 90, 10))
    single = client.extra_single_image(image=source, upscaler_1=esrgan, upscaling_resize=4)
    assert single.image.size == (48, 40) and f"Postprocess upscaler: {esrgan}" in single.info
    batch = client.extra_batch_images(images=[source, source], name_list=["a.png", "b.png"], upscaler_1="Nearest",
                                      upscaling_resize=3)
    assert [i.size for i in batch.images] == [(36, 30), (36, 30)]
    assert esrgan in [u["name"] for u in client.get_upscalers()]


def test_extras_request_models_have_a1111_fields_and_defaults():
    from webui.api import models

    assert models.ExtrasSingleImageRequest().model_dump() == {
        "resize_mode": 0, "show_extras_results": True, "gfpgan_visibility": 0, "codeformer_visibility": 0,
        "codeformer_weight": 0, "upscaling_resize": 2, "upscaling_resize_w": 512, "upscaling_resize_h": 512,
        "upscaling_crop": True, "upscaler_1": "None", "upscaler_2": "None", "extras_upscaler_2_visibility": 0,
        "upscale_first": False, "image": ""}
    assert set(models.ExtrasBatchImagesRequest.model_fields) - set(models.ExtrasBaseRequest.model_fields) == {
        "imageList"}
    assert set(models.FileData.model_fields) == {"data", "name"}
    assert set(models.ExtrasSingleImageResponse.model_fields) == {"html_info", "image"}
    assert set(models.ExtrasBatchImagesResponse.model_fields) == {"html_info", "images"}
