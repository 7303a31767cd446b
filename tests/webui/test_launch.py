"""launch.py as a user runs it: flags, no reinstall, a served page, a clear first-run message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gradio_client.exceptions import AppError

from launch import missing_requirements, parse_auth
from tests.support.apps import free_port
from tests.support.ui_client import Client

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_a1111_flag_names():
    out = subprocess.run([sys.executable, "launch.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True)
    for flag in ("--port", "--listen", "--share", "--gradio-auth", "--api", "--data-dir", "--ckpt", "--ckpt-dir",
                 "--xformers", "--opt-sdp-attention", "--medvram", "--lowvram", "--no-half", "--device",
                 "--extensions-dir"):
        assert flag in out.stdout, flag


def test_this_environment_needs_no_install():
    assert missing_requirements(ROOT / "requirements.txt") == []


def test_gradio_auth_parsing():
    assert parse_auth("a:b,c:d:e") == [("a", "b"), ("c", "d:e")]
    with pytest.raises(SystemExit):
        parse_auth("nocolon")


def test_fresh_start_serves_quickly_and_first_generate_says_what_is_missing(tmp_path):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "launch.py", "--data-dir", str(tmp_path / "data"), "--port", str(port), "--skip-install",
         "--gradio-auth", "artist:secret"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        started = time.monotonic()
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(url, timeout=2).status_code in (200, 401, 302):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() - started < 60, "page not served within 60 s"
            time.sleep(0.5)
        folders = ("models/Stable-diffusion", "models/ESRGAN", "models/Lora", "models/VAE", "embeddings", "outputs")
        for folder in folders:
            assert (tmp_path / "data" / folder).is_dir(), folder
        assert httpx.get(url + "config", timeout=60).status_code == 401  # the login protects the app
        client = Client(url, auth=("artist", "secret"), verbose=False)
        with pytest.raises(AppError) as err:
            client.predict(checkpoint="", prompt="a cat", negative_prompt="", sampler_name="Euler a",
                           scheduler="Automatic", steps=2, cfg_scale=7, width=64, height=64, seed=1, batch_size=1,
                           n_iter=1, api_name="/txt2img")
        message = str(err.value)
        assert "stable-diffusion-v1-5/stable-diffusion-v1-5 is not downloaded" in message
        assert "models/Stable-diffusion" in message and "Traceback" not in message
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_ckpt_loads_beside_start_up_and_the_first_job_waits_for_that_load(app_context, caplog):
    """--ckpt is loaded on its own thread while the server starts; a job sent meanwhile gets that same load."""
    import threading

    from launch import load_initial_checkpoint
    from pipelines.requests import Txt2ImgRequest

    loader = threading.Thread(target=load_initial_checkpoint, args=(app_context, "tiny-sd15"))
    loader.start()
    result = app_context.engine.generate(Txt2ImgRequest(prompt="a kettle", steps=1, width=64, height=64, seed=3,
                                                        model="tiny-sd15"))
    loader.join(60)
    assert result.images[0].path is not None and result.images[0].path.is_file()
    assert app_context.store.cache.keys() == [app_context.store.resolve("tiny-sd15").ref.key]  # loaded once
    assert app_context.selection.current == "tiny-sd15"

    with caplog.at_level("ERROR", logger="atelier"):
        load_initial_checkpoint(app_context, "not-installed")  # logged, never raised: the UI still starts
    assert "could not load --ckpt not-installed" in caplog.text
