"""An unconditional DDPM checkpoint in the txt2img tab over real HTTP (gradio_client) on the live app: selecting it
turns the sampler menu to DDPM / DDIM with the model's own steps and says why the prompt is off; generating makes
its 16x16 image with its infotext. The model is written into the shared ``live_app`` and removed after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PIL import Image

from tests.support.apps import checkpoint_added
from tests.support.tiny_seed_models import save_ddpm_folder
from tests.support.ui_client import Client

FORM = dict(checkpoint="tiny-ddpm", prompt="", negative_prompt="", sampler_name="DDPM", scheduler="Automatic",
            steps=3, cfg_scale=7, width=64, height=64, seed=21, batch_size=1, n_iter=1)


@pytest.fixture(scope="module")
def ddpm(live_app) -> Iterator[str]:
    with checkpoint_added(live_app, save_ddpm_folder, "tiny-ddpm") as name:
        yield name


def test_selecting_it_fits_the_form_and_generating_makes_its_image(live_app, ddpm):
    client = Client(live_app["url"], verbose=False)
    prompt, negative, sampler, steps = client.predict(ddpm, "Euler a", 20, api_name="/txt2img_model_form")
    assert prompt["interactive"] is False and negative["interactive"] is False
    assert [c[0] for c in sampler["choices"]] == ["DDPM", "DDIM"] and sampler["value"] == "DDPM"
    assert (steps["maximum"], steps["value"]) == (1000, 1000)  # the model's own: every training step
    assert "Unconditional pixel-space model" in client.predict(ddpm, api_name="/checkpoint_hint")
    gallery, info = client.predict(**FORM, api_name="/txt2img")  # DDPM is on this page's menu now
    assert Image.open(gallery[0]["image"]).size == (16, 16)
    assert "Sampler: DDPM" in info and "Steps: 3" in info and "Model: tiny-ddpm" in info
    back = client.predict("tiny-sd15", "DDPM", 1000, api_name="/txt2img_model_form")
    assert back[0]["interactive"] is True and back[2]["value"] == "Euler a"  # a text-to-image model: the usual form
    assert (back[3]["maximum"], back[3]["value"]) == (150, 20)
