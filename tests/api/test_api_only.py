"""The API without the UI (--nowebui), and launch.py's API flags, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from launch import build_api_config, build_parser, build_settings, server_port
from pipelines.context import AppContext
from tests.support.apps import free_port, install_models, make_settings
from webui.api import ApiConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api_only(tmp_path, model_store):
    from webui.api_server import serve_api

    install_models(model_store, tmp_path, ["tiny-sd15"])
    ctx = AppContext.build(make_settings(tmp_path))
    server = serve_api(ctx, port=free_port(), api=ApiConfig(), block=False)
    try:
        yield server.url
    finally:
        server.close()


def test_api_only_serves_the_api_docs_and_no_page(api_only):
    response = httpx.post(api_only + "sdapi/v1/txt2img", timeout=120,
                          json={"prompt": "x", "steps": 2, "width": 64, "height": 64, "seed": 3})
    assert response.status_code == 200 and "x-process-time" in response.headers  # no --api-auth: open
    assert json.loads(response.json()["info"])["all_seeds"] == [3]
    assert httpx.get(api_only + "sdapi/v1/progress", timeout=60).json()["progress"] == 0
    assert httpx.get(api_only, timeout=60).status_code == 404
    assert httpx.get(api_only + "docs", timeout=60).status_code == 200
    schema = httpx.get(api_only + "openapi.json", timeout=60).json()
    assert "/sdapi/v1/txt2img" in schema["paths"]
    assert {"precision", "no_half"} <= set(schema["components"]["schemas"]["FlagsModel"]["properties"])  # cmd-flags
    assert httpx.post(api_only + "sdapi/v1/img2img", json={}, timeout=60).status_code == 404  # no init image
    assert httpx.post(api_only + "sdapi/v1/interrogate", json={}, timeout=60).status_code == 501
    rebound = httpx.get(api_only + "sdapi/v1/progress", headers={"Host": "evil.example"}, timeout=60)
    assert rebound.status_code == 403  # bound to localhost: a foreign Host (DNS rebinding) is refused here too


def test_launch_flags():
    parse = build_parser().parse_args
    assert server_port(parse([])) == 7860
    assert server_port(parse(["--nowebui"])) == 7861  # A1111's API-only default
    assert server_port(parse(["--nowebui", "--port", "9000"])) == 9000
    assert build_api_config(parse([])) is None  # off by default, as in A1111
    assert build_api_config(parse(["--api-auth", "a:b"])) is None  # a login alone does not turn it on
    config = build_api_config(parse(["--api", "--api-auth", "a:b,c:d:e"]))
    assert config.auth == (("a", "b"), ("c", "d:e")) and config.cmd_flags["api"] is True
    assert build_api_config(parse(["--nowebui"])).auth == ()
    with pytest.raises(SystemExit, match="--api-auth"):
        build_api_config(parse(["--api", "--api-auth", "nopassword"]))


def test_the_checkpoint_saved_by_options_is_selected_at_the_next_start(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"sd_model_checkpoint": "tiny-sd15-b [0123456789]"}))
    settings = build_settings(build_parser().parse_args(["--data-dir", str(tmp_path)]))
    assert settings.initial_model == "tiny-sd15-b [0123456789]"
    settings = build_settings(build_parser().parse_args(["--data-dir", str(tmp_path), "--ckpt", "other"]))
    assert settings.initial_model == "other"  # --ckpt wins


@pytest.mark.parametrize("mode", ["--nowebui", "--api"])
def test_launch_serves_the_api_with_its_own_login(tmp_path, mode):
    """... and the API alone never imports Gradio (most of the page's start-up): ``-X importtime`` lists every
    module the server imported, in its log (a file: that list outgrows a pipe's buffer)."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-X", "importtime", "launch.py", mode, "--port", str(port), "--data-dir",
             str(tmp_path / "data"), "--skip-install", "--api-auth", "robot:t0ken-pw", "--gradio-auth", "ui:ui-pw",
             "--precision", "full"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )
    url = f"http://127.0.0.1:{port}/sdapi/v1/"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(url + "progress", timeout=2).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "API not served within 90 s"
            time.sleep(0.3)
        flags = httpx.get(url + "cmd-flags", auth=("robot", "t0ken-pw"), timeout=60)
        assert flags.status_code == 200
        assert flags.json()["nowebui"] is (mode == "--nowebui") and flags.json()["port"] == port
        assert flags.json()["precision"] == "fp32"  # A1111's --precision full, by Atelier's name
        assert "t0ken-pw" not in flags.text and "ui-pw" not in flags.text
        assert httpx.get(url + "sd-models", auth=("ui", "ui-pw"), timeout=60).status_code == 401
        ui_config = httpx.get(f"http://127.0.0.1:{port}/config", timeout=60).status_code
        assert ui_config == (404 if mode == "--nowebui" else 401)  # no UI / the UI wants its own login
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    imported = {line.rpartition("|")[2].strip() for line in log.read_text().splitlines()
                if line.startswith("import time:")}
    assert "fastapi" in imported and ("gradio" in imported) is (mode == "--api")
