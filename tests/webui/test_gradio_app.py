"""The Gradio app over real HTTP (gradio_client), on tiny models."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from tests.support.ui_client import Client

FORM = dict(checkpoint="tiny-sd15", prompt="a teapot", negative_prompt="", sampler_name="Euler a",
            scheduler="Automatic", steps=4, cfg_scale=7, width=64, height=64, seed=9, batch_size=1, n_iter=1)


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


def test_page_is_served_with_its_tabs(live_app):
    page = httpx.get(live_app["url"], timeout=60)
    assert page.status_code == 200 and "<html" in page.text
    config = httpx.get(live_app["url"] + "config", timeout=60).json()
    assert config["title"] == "Atelier"
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"txt2img", "Models", "Settings", "Stable Diffusion checkpoint", "Prompt"} <= labels


def test_no_event_runs_on_the_change_of_a_component_it_writes(live_app):
    """Such an event runs again after each of its answers for as long as the page is open: the styles refresh
    once did, several requests a second from every page, and Gradio re-reads its inputs for each (issue 12)."""
    config = httpx.get(live_app["url"] + "config", timeout=60).json()
    names = {c["id"]: c.get("props", {}).get("elem_id") or c.get("props", {}).get("label")
             for c in config["components"]}
    loops = [(dep["id"], names.get(target)) for dep in config["dependencies"]
             for target, event in dep["targets"] if event == "change" and target in dep["outputs"]]
    assert loops == []


def test_generate_returns_the_saved_png_with_its_parameters(client, live_app):
    gallery, info = client.predict(**{**FORM, "batch_size": 2}, api_name="/txt2img")
    assert len(gallery) == 2 and gallery[0]["caption"] == "Seed 9"
    assert "Seed: 9" in info and "Model: tiny-sd15" in info
    downloaded = Image.open(gallery[0]["image"])
    assert downloaded.size == (64, 64) and downloaded.info["parameters"] == info
    saved = sorted(Path(live_app["data_dir"], "outputs", "txt2img-images").rglob("*-9.png"))
    assert saved and Image.open(saved[-1]).info["parameters"] == info


def test_live_previews_are_streamed_before_the_result(client):
    job = client.submit(**{**FORM, "steps": 6}, api_name="/txt2img_live")
    job.result(timeout=120)
    outputs = job.outputs()
    previews = [o for o in outputs[:-1] if isinstance(o[0], dict) and o[0].get("value")]
    assert previews, outputs
    assert outputs[-1][1]  # the final output carries the gallery


def test_bad_model_gives_a_readable_error_not_a_traceback(client):
    with pytest.raises(AppError) as err:
        client.predict(**{**FORM, "checkpoint": "no-such-model"}, api_name="/txt2img")
    assert "no model named 'no-such-model'" in str(err.value) and "Traceback" not in str(err.value)


def test_bad_size_names_the_field(client):
    with pytest.raises(AppError, match="multiple of 8|width"):
        client.predict(**{**FORM, "width": 100}, api_name="/txt2img")


def test_checkpoint_selector_swaps_and_shows_attention(client, live_app):
    dropdown, status = client.predict(checkpoint="tiny-sd15-b", api_name="/select_checkpoint")
    assert "tiny-sd15-b [" in status and "SDPA" in status
    assert live_app["ctx"].selection.current == "tiny-sd15-b"
    client.predict(checkpoint="tiny-sd15", api_name="/select_checkpoint")
    assert live_app["ctx"].selection.current == "tiny-sd15"


def test_interrupt_stops_a_long_job_and_keeps_its_image(client, live_app):
    job = client.submit(**{**FORM, "steps": 150, "n_iter": 5}, api_name="/txt2img")
    engine = live_app["ctx"].engine
    deadline = time.monotonic() + 60
    while engine.state is None or engine.state.sampling_step < 2:
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.05)
    client.predict(api_name="/interrupt")
    gallery, info = job.result(timeout=120)
    assert len(gallery) == 1 and "Steps: 150" in info
