"""The img2img tab's events over real HTTP (gradio_client), on the tiny models of the live app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

FORM = dict(checkpoint="tiny-sd15", prompt="a teapot", negative_prompt="", sampler_name="Euler a",
            scheduler="Automatic", steps=4, resize_mode=0, width=64, height=64, n_iter=1, batch_size=1,
            cfg_scale=7, denoising_strength=0.75, seed=4242)


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A 96x80 picture with structure (a gradient and a dark square), so changes are visible."""
    ramp = np.linspace(0, 255, 96, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (80, 1)), np.full((80, 96), 120, np.uint8), np.tile(ramp[::-1], (80, 1))], -1)
    pixels[20:50, 30:60] = 10
    path = tmp_path_factory.mktemp("img2img-src") / "source.png"
    Image.fromarray(pixels).save(path)
    return path


def saved(data_dir: Path, mode: str, seed: int) -> list[Path]:
    return sorted(Path(data_dir, "outputs", f"{mode}-images").rglob(f"*-{seed}.png"))


def test_img2img_saves_the_image_with_its_parameters(client, live_app, source):
    gallery, info = client.predict(**FORM, init_image=handle_file(str(source)), api_name="/img2img")
    assert len(gallery) == 1 and gallery[0]["caption"] == "Seed 4242"
    assert "Seed: 4242" in info and "Denoising strength: 0.75" in info and "Size: 64x64" in info
    files = saved(live_app["data_dir"], "img2img", 4242)
    assert files, "nothing saved under outputs/img2img-images"
    with Image.open(files[-1]) as png:
        assert png.size == (64, 64) and png.info["parameters"] == info


def test_img2img_starts_from_the_uploaded_image(client, source, tmp_path):
    """Same seed and settings, another source picture: another result (the tiny model's weights are
    random, so the result need not resemble the source, but it must depend on it)."""
    other = tmp_path / "other.png"
    Image.fromarray(255 - np.asarray(Image.open(source))).save(other)
    args = {**FORM, "denoising_strength": 0.5, "width": 96, "height": 80, "seed": 5}
    results = []
    for start in (source, other, source):
        gallery, _ = client.predict(**args, init_image=handle_file(str(start)), api_name="/img2img")
        results.append(np.asarray(Image.open(gallery[0]["image"]).convert("RGB"), dtype=np.int16))
    assert results[0].shape == (80, 96, 3)
    assert np.array_equal(results[0], results[2])
    assert np.abs(results[0] - results[1]).mean() > 1


def test_resize_mode_and_size_reach_the_request(client, source):
    gallery, info = client.predict(**{**FORM, "resize_mode": 1, "width": 72, "height": 64},
                                   init_image=handle_file(str(source)), api_name="/img2img")
    assert Image.open(gallery[0]["image"]).size == (72, 64) and "Size: 72x64" in info


def test_missing_image_is_a_clear_error(client):
    with pytest.raises(AppError, match="Upload or paste an image") as err:
        client.predict(**FORM, init_image=None, api_name="/img2img")
    assert "Traceback" not in str(err.value)


def test_denoising_that_runs_no_step_names_the_field(client, source):
    with pytest.raises(AppError, match="denoising_strength"):
        client.predict(**{**FORM, "denoising_strength": 0.1, "steps": 4}, init_image=handle_file(str(source)),
                       api_name="/img2img")
