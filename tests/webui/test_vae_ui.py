"""The SD VAE quick setting over real HTTP (gradio_client) on the live app (``--vae``: tests/webui/test_cli.py).

``live_app`` is shared by the session: the VAE file and the SD VAE option are put back afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.infotext.codec import parse_infotext
from tests.support.tiny_networks import save_vae_file
from tests.support.ui_client import Client
from webui.tabs.txt2img import PASTE_NAMES

FORM = dict(checkpoint="tiny-sd15", prompt="a fox", negative_prompt="", sampler_name="Euler",
            scheduler="Automatic", steps=2, cfg_scale=7, width=64, height=64, seed=5, batch_size=1, n_iter=1,
            refiner_checkpoint=None)
VAE = "ui-vae.safetensors"


@pytest.fixture
def vae(live_app) -> Iterator[Path]:
    ctx = live_app["ctx"]
    path = save_vae_file(live_app["data_dir"] / "models" / "VAE" / VAE, seed=31, layout="original")
    ctx.store.refresh()
    try:
        yield path
    finally:
        ctx.options.update({"sd_vae": "Automatic"})
        path.unlink()
        ctx.store.refresh()


def test_the_sd_vae_dropdown_is_saved_and_decodes_the_next_generation(live_app, vae):
    client = Client(live_app["url"], verbose=False)
    gallery, info = client.predict(**FORM, api_name="/txt2img")
    own = np.asarray(Image.open(gallery[0]["image"]))
    assert "VAE" not in info
    client.predict(sd_vae=VAE, api_name="/set_sd_vae")
    assert json.loads(Path(live_app["data_dir"], "config.json").read_text())["sd_vae"] == VAE
    gallery, info = client.predict(**FORM, api_name="/txt2img")
    assert parse_infotext(info)["VAE"] == VAE
    assert not np.array_equal(np.asarray(Image.open(gallery[0]["image"])), own)
    # Read parameters of an image made with the checkpoint's own VAE keeps the setting (A1111 does);
    # one naming the VAE selects it.
    client.predict(sd_vae="None", api_name="/set_sd_vae")
    values = dict(zip(PASTE_NAMES, client.predict(**{**FORM, "prompt": info}, api_name="/txt2img_read_parameters"),
                      strict=True))
    assert values["sd_vae"]["value"] == VAE and [VAE, VAE] in values["sd_vae"]["choices"]  # the list refreshed too
    assert live_app["ctx"].options.sd_vae() == VAE
    with pytest.raises(Exception, match="missing"):  # not one of the dropdown's choices
        client.predict(sd_vae="missing.safetensors", api_name="/set_sd_vae")
