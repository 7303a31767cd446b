"""The result actions under the galleries, over real HTTP (gradio_client) on the live app's tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from pipelines.actions import VARY_DENOISING_STRENGTH
from pipelines.infotext import parse_infotext

MADE = dict(checkpoint="tiny-sd15", prompt="a teapot, on a table", negative_prompt="blurry",
            sampler_name="Euler", scheduler="Automatic", steps=4, cfg_scale=6.5, width=64, height=72, seed=777,
            batch_size=1, n_iter=1)


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


@pytest.fixture(scope="module")
def made(client) -> tuple[Path, str]:
    """An image made by the app's txt2img and downloaded from it, with its generation info."""
    gallery, info = client.predict(**MADE, api_name="/txt2img")
    return Path(gallery[0]["image"]), info


def as_gallery(*paths: Path) -> list[dict]:
    return [{"image": handle_file(str(p)), "caption": None} for p in paths]


@pytest.mark.parametrize("strength", ["subtle", "strong"])
def test_vary_makes_a_new_image_from_the_selected_one(client, made, live_app, strength):
    path, info = made
    original = parse_infotext(info)
    gallery, new_info = client.predict(as_gallery(path), api_name=f"/txt2img_vary_{strength}")
    assert len(gallery) == 1
    varied = parse_infotext(new_info)
    assert varied["Seed"] != original["Seed"]
    assert float(varied["Denoising strength"]) == VARY_DENOISING_STRENGTH[strength]
    for key in ("Prompt", "Negative prompt", "Steps", "Sampler", "CFG scale", "Size", "Model"):
        assert varied[key] == original[key], key
    with Image.open(gallery[0]["image"]) as image, Image.open(path) as source:
        assert image.size == source.size and image.info["parameters"] == new_info
        assert image.tobytes() != source.tobytes()
    saved = list((live_app["data_dir"] / "outputs" / "img2img-images").glob(f"*/*-{varied['Seed']}.png"))
    assert len(saved) == 1


def test_vary_without_an_image_is_a_clear_error(client):
    with pytest.raises(Exception, match="generate one first"):
        client.predict([], api_name="/txt2img_vary_subtle")


def test_reuse_seed_returns_the_selected_images_seed(client, made):
    path, info = made
    assert client.predict(as_gallery(path), api_name="/txt2img_reuse_seed") == MADE["seed"]
