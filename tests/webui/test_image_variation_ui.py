"""Vary's "Variation (image embedding)" over real HTTP (gradio_client) on the live app: a txt2img result varied
through a tiny image-variation model, written into the shared ``live_app`` and removed after; the img2img Variation
sub-tab on it and on a tiny Stable unCLIP model (its noise level and prompt)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from pipelines.infotext.codec import parse_infotext
from tests.support.apps import checkpoint_added
from tests.support.tiny_seed_models import save_image_variation_folder, save_unclip_folder
from tests.support.ui_client import Client

FORM = dict(checkpoint="tiny-sd15", prompt="a teapot", negative_prompt="", sampler_name="Euler", scheduler="Automatic",
            steps=2, cfg_scale=5, width=64, height=64, seed=31, batch_size=1, n_iter=1)


@pytest.fixture(scope="module")
def variation_model(live_app) -> Iterator[str]:
    with checkpoint_added(live_app, save_image_variation_folder, "tiny-variation") as name:
        yield name


def test_vary_by_image_embedding_remakes_the_selected_image(live_app, variation_model):
    client = Client(live_app["url"], verbose=False)
    gallery, _ = client.predict(**FORM, api_name="/txt2img")
    varied, info = client.predict([{"image": handle_file(gallery[0]["image"]), "caption": None}], 0,
                                  api_name="/txt2img_vary_embedding")
    params = parse_infotext(info)
    assert params["Model"] == variation_model and params["Variation"] == "image embedding"
    assert params["Sampler"] == "Euler" and params["Steps"] == "2" and params["Seed"] != "31"  # its settings, new seed
    assert Image.open(varied[0]["image"]).size == (64, 64)


def test_img2img_variation_sub_tab_varies_any_image(live_app, variation_model, tmp_path):
    client = Client(live_app["url"], verbose=False)
    source = tmp_path / "photo.png"
    Image.new("RGB", (80, 48), (30, 160, 40)).save(source)  # any picture, no infotext
    gallery, info = client.predict(handle_file(str(source)), variation_model, 0, "", "", "Euler", "Automatic", 2, 64,
                                   64, 1, 2, 4, 5, api_name="/img2img_variation")
    params = parse_infotext(info)
    assert len(gallery) == 2 and params["Seed"] == "5" and params["Model"] == variation_model
    assert Image.open(gallery[1]["image"]).size == (64, 64)
    with pytest.raises(Exception, match="no Image variation model named 'nope'"):
        client.predict(handle_file(str(source)), "nope", 0, "", "", "Euler", "Automatic", 2, 64, 64, 1, 1, 4, 5,
                       api_name="/img2img_variation")


def test_img2img_variation_sub_tab_runs_unclip_with_its_noise_level(live_app, tmp_path):
    client = Client(live_app["url"], verbose=False)
    source = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (200, 120, 40)).save(source)
    with checkpoint_added(live_app, save_unclip_folder, "tiny-unclip") as name:
        runs = [client.predict(handle_file(str(source)), name, level, "an orange square", "", "Euler", "Automatic",
                               2, 64, 64, 1, 1, 4, 9, api_name="/img2img_variation") for level in (0, 700, 700)]
        with pytest.raises(Exception, match="greater than maximum value 999"):  # the slider stops at the top
            client.predict(handle_file(str(source)), name, 1000, "", "", "Euler", "Automatic", 2, 64, 64, 1, 1, 4, 9,
                           api_name="/img2img_variation")
        # Vary's "Variation (image embedding)" on that result, with the Vary row's noise level (unCLIP is listed first)
        varied, varied_info = client.predict([{"image": handle_file(runs[1][0][0]["image"]), "caption": None}], 300,
                                             api_name="/img2img_vary_embedding")
        # PNG Info -> Send to img2img: the Variation sub-tab's model and noise level come back with the settings
        pasted = client.predict(handle_file(runs[1][0][0]["image"]), api_name="/png_info_send_to_img2img")
    params = parse_infotext(runs[1][1])
    assert params["Noise level"] == "700" and params["Model"] == name and params["Prompt"] == "an orange square"
    saved = Image.open(runs[1][0][0]["image"])
    assert parse_infotext(saved.info["parameters"])["Noise level"] == "700"  # the gallery shows the saved PNG
    varied_params = parse_infotext(varied_info)
    assert varied_params["Model"] == name and varied_params["Noise level"] == "300"
    assert varied_params["Prompt"] == "an orange square" and varied_params["Seed"] != "9"  # its prompt, a new seed
    model, noise = pasted[-5:-3]  # the Variation sub-tab's, before the 3 quick settings
    assert pasted[1] == "an orange square" and model == name and (noise["value"], noise["visible"]) == (700, True)
    first, second, third = (np.asarray(Image.open(r[0][0]["image"]).convert("RGB")).astype(int) for r in runs)
    assert not np.array_equal(first, second) and np.array_equal(second, third)
