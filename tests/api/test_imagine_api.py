"""The Imagine flow over REST (/atelier/v1/imagine and /imagine/action) on the API app's tiny models."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from tests.support.api import API_USER, FAST


@pytest.fixture(scope="module")
def atelier(api_app):
    with httpx.Client(base_url=api_app["url"] + "atelier/v1", auth=API_USER, timeout=120) as client:
        yield client


def test_imagine_returns_the_grid_and_four_seeded_images_then_u3_upscales_one(atelier, api_app):
    outputs = api_app["ctx"].settings.outputs_dir
    made = atelier.post("/imagine", json={**FAST, "prompt": "a teapot, imagine api", "steps": 1, "seed": 40})
    assert made.status_code == 200, made.text
    body = made.json()
    assert [i["seed"] for i in body["images"]] == [40, 41, 42, 43]
    assert body["grid"]["path"].startswith("txt2img-grids/") and (outputs / body["grid"]["path"]).is_file()
    grid = Image.open(io.BytesIO(base64.b64decode(body["grid"]["image"])))
    assert grid.size == (128, 128) and grid.info["parameters"] == body["info"]

    third = body["images"][2]["path"]
    upscaled = atelier.post("/imagine/action", json={"action": "upscale", "source": third, "factor": 1.5,
                                                     "send_images": False}).json()
    assert upscaled["grid"] is None and upscaled["images"][0]["image"] is None
    with Image.open(outputs / upscaled["images"][0]["path"]) as image:
        assert image.size == (96, 96) and "Seed: 42" in image.info["parameters"]


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "zoom", "source": "x.png"}, "action"),
    ({"action": "reroll", "source": "../../etc/passwd"}, "source"),
])
def test_bad_actions_are_422_naming_the_field(atelier, body, field):
    if body["action"] == "zoom":  # a real image, so only the action is wrong
        made = atelier.post("/imagine", json={**FAST, "steps": 1, "batch_size": 1, "send_images": False}).json()
        body = {**body, "source": made["images"][0]["path"]}
    response = atelier.post("/imagine/action", json=body)
    assert response.status_code == 422 and field in response.json()["errors"]


def test_grid_save_off_through_sdapi_options_keeps_the_images_only(api, atelier):
    assert api.get("/options").json()["grid_save"] is True
    assert api.post("/options", json={"grid_save": False}).status_code == 200
    try:
        body = atelier.post("/imagine", json={**FAST, "steps": 1, "batch_size": 2, "send_images": False}).json()
    finally:
        api.post("/options", json={"grid_save": True})
    assert body["grid"]["path"] is None and all(i["path"] for i in body["images"])
