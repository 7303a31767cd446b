"""txt2img's seed "Extra" (Variation seed, Variation strength, Resize seed from) over real HTTP (gradio_client) on
the live app's tiny model: the same values give the same image, the strength changes it, unticked extras are
ignored (A1111), the infotext names them and ↙ Read parameters puts them back with "Extra" ticked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.infotext.codec import parse_infotext
from tests.support.ui_client import Client
from webui.tabs.txt2img import PASTE_NAMES

FORM = dict(checkpoint="tiny-sd15", prompt="a fox", negative_prompt="", sampler_name="Euler",
            scheduler="Automatic", steps=2, cfg_scale=7, width=64, height=64, seed=5, batch_size=1, n_iter=1)
VARIATION = dict(seed_extra=True, subseed=77, subseed_strength=0.5)


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


def generate(client: Client, **extra) -> tuple[np.ndarray, str]:
    gallery, info = client.predict(**{**FORM, **extra}, api_name="/txt2img")
    with Image.open(gallery[0]["image"]) as image:
        return np.asarray(image.convert("RGB")), info


def test_variation_seed_is_deterministic_changes_the_image_and_is_pasted_back(client):
    plain, _ = generate(client)
    varied, varied_info = generate(client, **VARIATION)
    again, _ = generate(client, **VARIATION)
    assert np.array_equal(varied, again), "the same variation seed and strength gave another image"
    assert not np.array_equal(varied, plain), "a variation strength of 0.5 left the image as it was"
    params = parse_infotext(varied_info)
    assert params["Seed"] == "5" and params["Variation seed"] == "77" and params["Variation seed strength"] == "0.5"

    unticked, info = generate(client, **{**VARIATION, "seed_extra": False})  # hidden values count for nothing
    assert np.array_equal(unticked, plain) and "Variation seed" not in info

    # ↙ Read parameters on the varied image's infotext, from a form with "Extra" unticked
    outputs = client.predict(**{**FORM, "prompt": varied_info}, api_name="/txt2img_read_parameters")
    pasted = dict(zip(PASTE_NAMES, outputs, strict=True))
    assert pasted["seed_extra"] is True and pasted["subseed"] == 77 and pasted["subseed_strength"] == 0.5
    # ... and a plain image's infotext, into a form with the variation on: "Extra" unticked, strength 0 (A1111)
    outputs = client.predict(**{**FORM, **VARIATION, "prompt": info}, api_name="/txt2img_read_parameters")
    pasted = dict(zip(PASTE_NAMES, outputs, strict=True))
    assert pasted["seed_extra"] is False and pasted["subseed_strength"] == 0


def test_resize_seed_from_is_written_and_bad_values_are_refused(client):
    _, info = generate(client, seed_extra=True, seed_resize_from_w=128, seed_resize_from_h=96)
    assert parse_infotext(info)["Seed resize from"] == "128x96"
    with pytest.raises(Exception, match="seed_resize_from_w"):
        generate(client, seed_extra=True, seed_resize_from_w=100, seed_resize_from_h=96)  # not a multiple of 8
