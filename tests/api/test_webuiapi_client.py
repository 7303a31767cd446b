"""An existing A1111 client library, unmodified: webuiapi (PyPI, MIT), pinned in requirements-test.txt."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
import webuiapi
from PIL import Image

from tests.support.api import API_USER


@pytest.fixture(scope="module")
def client(api_app):
    url = urlparse(api_app["url"])
    return webuiapi.WebUIApi(host=url.hostname, port=url.port, sampler="Euler a", steps=3,
                             username=API_USER[0], password=API_USER[1])


def test_txt2img_and_png_info(client):
    result = client.txt2img(prompt="a red fox", negative_prompt="blurry", width=64, height=64, seed=5, batch_size=2)
    assert len(result.images) == 2 and result.image.size == (64, 64)
    assert result.info["all_seeds"] == [5, 6] and result.info["sampler_name"] == "Euler a"
    infotext = result.info["infotexts"][0]
    assert result.image.info["parameters"] == infotext and "Negative prompt: blurry" in infotext
    read = client.png_info(result.image)
    assert read.info == infotext
    assert read.parameters["Seed"] == "5" and read.parameters["Prompt"] == "a red fox"


def test_models_and_options_swap(client, api_app):
    title = next(name for name in client.util_get_model_names() if name.startswith("tiny-sd15-b"))
    try:
        client.util_set_model(title)  # an exact title (else webuiapi picks the most similar one), POSTs /options
        # A model first hashed when it loads is listed as "name" before and "name [hash10]" after (as A1111)
        current = client.util_get_current_model()
        assert current == title or (" [" not in title and current.startswith(f"{title} ["))
        assert api_app["ctx"].selection.current == "tiny-sd15-b"
        result = client.txt2img(prompt="x", width=64, height=64, seed=1)
        assert result.info["sd_model_name"] == "tiny-sd15-b"
    finally:
        client.set_options({"sd_model_checkpoint": "tiny-sd15"})
    assert client.util_get_current_model().startswith("tiny-sd15 [")


def test_lists_progress_and_control(client):
    assert "DPM++ 2M" in client.util_get_sampler_names() and "karras" in client.util_get_scheduler_names()
    assert [u["name"] for u in client.get_upscalers()] == ["None", "Lanczos", "Nearest"]
    scripts = client.get_scripts()  # the built-in extensions' scripts, lower-cased as A1111 lists them
    assert {"x/y/z plot", "cfg rescale", "prompt suffix"} <= set(scripts["txt2img"]) & set(scripts["img2img"])
    assert client.get_prompt_styles() == [] and client.get_loras() == [] and client.get_sd_vae() == []
    assert client.get_embeddings() == {"loaded": {}, "skipped": {}}
    assert "ram" in client.get_memory() and client.get_cmd_flags()["api_auth"] == "<redacted>"
    client.util_wait_for_ready(check_interval=0.1)  # idle: progress 0 and job_count 0
    assert client.interrupt() == {} and client.skip() is None
    assert client.refresh_checkpoints() is None


def test_img2img(client):
    source = Image.new("RGB", (80, 48), (200, 40, 40))
    result = client.img2img(images=[source], prompt="a red fox", width=64, height=64, seed=7,
                            denoising_strength=0.5, batch_size=2)
    assert len(result.images) == 2 and result.image.size == (64, 64)
    assert result.info["all_seeds"] == [7, 8] and result.info["denoising_strength"] == 0.5
    assert "Denoising strength: 0.5" in result.image.info["parameters"]
    assert result.parameters["init_images"] is None  # not echoed back, as in A1111
