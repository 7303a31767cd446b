"""The SDXL refiner as users reach it: the txt2img tab's Refiner accordion (gradio_client) and the REST API's
``refiner_checkpoint`` / ``refiner_switch_at``, on one served app with the tiny SDXL and its tiny refiner."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.infotext.codec import parse_infotext
from tests.support.ui_client import Client
from webui.tabs.txt2img import PASTE_NAMES

FORM = dict(checkpoint="tiny-sdxl", prompt="a lighthouse", negative_prompt="", sampler_name="Euler a",
            scheduler="Automatic", steps=4, cfg_scale=7, width=64, height=64, seed=21, batch_size=1, n_iter=1)
REFINER = dict(enable_refiner=True, refiner_checkpoint="tiny-sdxl-refiner", refiner_switch_at=0.5)
BODY = {"prompt": "a lighthouse", "steps": 4, "width": 64, "height": 64, "seed": 21, "sampler_name": "Euler a",
        "override_settings": {"sd_model_checkpoint": "tiny-sdxl"}}


@pytest.fixture(scope="module")
def app(refiner_app) -> Iterator[dict]:
    with httpx.Client(base_url=refiner_app["url"] + "sdapi/v1", timeout=120) as api:
        yield {"url": refiner_app["url"], "client": Client(refiner_app["url"], verbose=False), "api": api}


def image_of(path_or_b64: str) -> np.ndarray:
    source = path_or_b64 if path_or_b64.endswith(".png") or "/" in path_or_b64[:5] else \
        io.BytesIO(base64.b64decode(path_or_b64))
    return np.asarray(Image.open(source).convert("RGB"), dtype=np.int16)


def test_accordion_is_closed_and_lists_sdxl_checkpoints_refiners_first(app):
    config = httpx.get(app["url"] + "config", timeout=60).json()
    by_id = {c.get("props", {}).get("elem_id"): c["props"] for c in config["components"]}
    assert by_id["txt2img_refiner"]["open"] is False and by_id["txt2img_enable_refiner"]["value"] is False
    choices = [c[0] if isinstance(c, list | tuple) else c for c in by_id["txt2img_refiner_checkpoint"]["choices"]]
    assert choices == ["", "tiny-sdxl-refiner", "tiny-sdxl"]  # no SD 1.x: another latent space
    assert by_id["txt2img_refiner_switch_at"]["value"] == 0.8


def test_ui_and_api_refine_the_same_image(app):
    client, api = app["client"], app["api"]
    plain, _ = client.predict(**FORM, api_name="/txt2img")
    refined, info = client.predict(**FORM, **REFINER, api_name="/txt2img")
    params = parse_infotext(info)
    assert params["Refiner"].startswith("tiny-sdxl-refiner [") and params["Refiner switch at"] == "0.5"
    ui_pixels = image_of(refined[0]["image"])
    assert not np.array_equal(ui_pixels, image_of(plain[0]["image"]))
    response = api.post("/txt2img", json={**BODY, "refiner_checkpoint": "tiny-sdxl-refiner", "refiner_switch_at": 0.5})
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert np.array_equal(image_of(body["images"][0]), ui_pixels)  # one request object, one engine
    info = __import__("json").loads(body["info"])
    assert info["extra_generation_params"]["Refiner switch at"] == 0.5
    assert parse_infotext(info["infotexts"][0])["Refiner"] == params["Refiner"]


def test_read_parameters_fills_the_refiner_accordion(app):
    infotext = ("a lighthouse\nSteps: 4, Sampler: Euler a, Seed: 21, Size: 64x64, Model: tiny-sdxl, "
                "Refiner: tiny-sdxl-refiner [0123456789], Refiner switch at: 0.65")
    values = dict(zip(PASTE_NAMES, app["client"].predict(**{**FORM, "prompt": infotext},
                                                         api_name="/txt2img_read_parameters"), strict=True))
    assert (values["enable_refiner"], values["refiner_checkpoint"], values["refiner_switch_at"]) == \
        (True, "tiny-sdxl-refiner", 0.65)


def test_ui_errors_name_the_refiner_setting(app):
    with pytest.raises(AppError) as err:
        app["client"].predict(**FORM, **{**REFINER, "refiner_checkpoint": ""}, api_name="/txt2img")
    assert "refiner_checkpoint" in str(err.value) and "Traceback" not in str(err.value)


@pytest.mark.parametrize("path, fields, field", [
    ("/txt2img", {"refiner_checkpoint": "no-such-refiner"}, "refiner_checkpoint"),
    ("/txt2img", {"refiner_checkpoint": "tiny-sd15"}, "refiner_checkpoint"),
    ("/txt2img", {"refiner_checkpoint": "tiny-sdxl-refiner", "refiner_switch_at": 1.5}, "refiner_switch_at"),
    ("/img2img", {"refiner_checkpoint": "tiny-sdxl-refiner"}, "refiner_checkpoint"),
])
def test_api_refuses_bad_refiners_naming_the_field(app, path, fields, field):
    body = {**BODY, **fields}
    if path == "/img2img":
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (90, 120, 200)).save(buffer, format="PNG")
        body["init_images"] = [base64.b64encode(buffer.getvalue()).decode()]
    response = app["api"].post(path, json=body)
    assert response.status_code == 422, response.text[:500]
    detail = response.json()
    assert detail["errors"].startswith(field) or str(detail["detail"]).startswith(field), detail
