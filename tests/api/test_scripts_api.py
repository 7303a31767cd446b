"""Scripts and extensions over the REST API: /scripts and /script-info with the built-ins, the X/Y/Z plot
through POST /txt2img with script_name (A1111's positional script_args and by name), alwayson_scripts,
errors naming the field, an extension's own route and a failing hook's 500 (fixture extensions)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pipelines.context import AppContext
from tests.support.api import FAST
from tests.support.apps import make_settings
from webui.api import ApiConfig, create_api_app

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "extensions"


def _post(api, **fields) -> tuple[list[Image.Image], dict]:
    response = api.post("/txt2img", json={**FAST, "steps": 1, **fields})
    assert response.status_code == 200, response.text
    body = response.json()
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in body["images"]], json.loads(body["info"])


def test_scripts_and_script_info_list_the_builtin_extensions(api):
    scripts = api.get("/scripts").json()
    for mode in ("txt2img", "img2img"):
        assert {"x/y/z plot", "cfg rescale", "prompt suffix"} <= set(scripts[mode])
    infos = api.get("/script-info").json()
    xyz = next(i for i in infos if i["name"] == "x/y/z plot" and not i["is_img2img"])
    assert not xyz["is_alwayson"]
    x_type = next(a for a in xyz["args"] if a["name"] == "x_type")
    assert x_type["label"] == "X type" and x_type["value"] == "Nothing" and "Steps" in x_type["choices"]
    rescale = next(i for i in infos if i["name"] == "cfg rescale" and i["is_img2img"])
    assert rescale["is_alwayson"] and rescale["args"] == [
        {"name": "phi", "label": "CFG Rescale \u03c6", "value": 0.0, "minimum": 0.0, "maximum": 1.0, "step": 0.05,
         "choices": None}]


def test_xyz_plot_through_txt2img_script_name(api, api_app):
    # A1111's positional layout: x type (index 4 = Steps, as in A1111), x values, x dropdown, y type, ...
    images, info = _post(api, script_name="x/y/z plot", script_args=[4, "1, 2", [], "CFG Scale", "", [3, 7]])
    assert len(images) == 1 and images[0].width > 2 * 64 and images[0].height > 2 * 64  # the labelled grid
    assert info["index_of_first_image"] == 1
    assert 'X Type: Steps, X Values: "1, 2", Y Type: CFG Scale, Y Values: "3, 7"' in images[0].info["parameters"]
    # by name, with the cell images too
    images, info = _post(api, script_name="X/Y/Z plot", script_args={"x_type": "Seed", "x_values": "1, 2",
                                                                      "include_lone_images": True})
    assert [im.size for im in images[1:]] == [(64, 64)] * 2 and info["all_seeds"][1:] == [1, 2]


def test_alwayson_scripts_reach_the_hooks(api):
    images, info = _post(api, alwayson_scripts={"CFG Rescale": {"args": [0.5]}, "prompt_suffix": {"suffix": "ink"}})
    assert "CFG Rescale \u03c6: 0.5" in info["infotexts"][0] and info["infotexts"][0].startswith("a teapot, ink\n")
    _, plain = _post(api)
    assert "CFG Rescale" not in plain["infotexts"][0] and plain["infotexts"][0].startswith("a teapot\n")


@pytest.mark.parametrize(("fields", "named"), [
    ({"script_name": "no such script"}, "script_name"),
    ({"script_name": "x/y/z plot", "script_args": ["Hair colour", "red"]}, "script_args.x_type"),
    ({"alwayson_scripts": {"ControlNet": {"args": []}}}, "alwayson_scripts.ControlNet"),
    ({"alwayson_scripts": {"cfg rescale": {"args": [2]}}}, "alwayson_scripts.cfg rescale.phi"),
])
def test_bad_script_fields_are_422_naming_them(api, fields, named):
    response = api.post("/txt2img", json={**FAST, **fields})
    assert response.status_code == 422 and response.json()["errors"].startswith(named), response.text


def test_extension_routes_and_a_failing_hook_over_http(tmp_path):
    ctx = AppContext.build(make_settings(tmp_path, extensions_dir=FIXTURES))
    with TestClient(create_api_app(ctx, ApiConfig())) as client:
        events = client.get("/extensions/recorder/events")
        assert events.status_code == 200 and events.json()["greeting"] == "hello"
        assert client.get("/sdapi/v1/options").json()["recorder_greeting"] == "hello"  # declared options are listed
        refused = client.post("/sdapi/v1/options", json={"recorder_greeting": 5})
        assert refused.status_code == 422 and refused.json()["errors"].startswith("recorder_greeting")
        failed = client.post("/sdapi/v1/txt2img", json={**FAST, "alwayson_scripts": {"failing_hook": {
            "fail_in": "before_job"}}})
    assert failed.status_code == 500 and failed.json()["error"] == "ExtensionError"
    assert "extension 'failing_hook' failed in before_job: RuntimeError" in failed.json()["detail"]
