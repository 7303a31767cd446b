"""The result actions under the galleries, over real HTTP (gradio_client) on the live app's tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import handle_file
from PIL import Image

from pipelines.actions import VARY_DENOISING_STRENGTH
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.png_info import EXIF_IFD, USER_COMMENT
from tests.support.ui_client import Client

MADE = dict(checkpoint="tiny-sd15", prompt="a teapot, on a table", negative_prompt="blurry",
            sampler_name="Euler", scheduler="Karras", steps=4, cfg_scale=6.5, width=64, height=72, seed=777,
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


def test_upscale_action_fills_the_upscale_tab_at_2x(client, made, live_app):
    path, _ = made
    values = client.predict(as_gallery(path), api_name="/txt2img_upscale")
    source, image, resize_mode, factor, upscaler_1, upscaler_2, visibility = values
    assert (source, resize_mode, factor, upscaler_2, visibility) == ("Single image", 0, 2, "None", 0)
    assert upscaler_1 == live_app["ctx"].upscalers.default_name()
    with Image.open(image) as sent, Image.open(path) as original:
        assert sent.tobytes() == original.tobytes() and sent.info["parameters"] == original.info["parameters"]


def test_send_to_extras_from_the_gallery_and_from_png_info(client, made):
    path, _ = made
    for values in (client.predict(as_gallery(path), api_name="/txt2img_send_to_extras"),
                   client.predict(handle_file(str(path)), api_name="/png_info_send_to_extras")):
        source, image = values
        assert source == "Single image"
        with Image.open(image) as sent, Image.open(path) as original:
            assert sent.tobytes() == original.tobytes()


def test_png_info_send_to_extras_without_an_image_is_a_clear_error(client):
    with pytest.raises(Exception, match="Drop an image into PNG Info first"):
        client.predict(None, api_name="/png_info_send_to_extras")


IMG2IMG_FILL = ("checkpoint", "prompt", "negative_prompt", "sampler_name", "scheduler", "steps", "resize_mode", "width",
                "height", "n_iter", "batch_size", "cfg_scale", "denoising_strength", "seed")


def filled(values: list) -> dict:
    """The img2img form's values from a send-to answer (the first of the fill outputs, in form order)."""
    return dict(zip(IMG2IMG_FILL, values[: len(IMG2IMG_FILL)], strict=True))


@pytest.mark.parametrize("api_name", ["/txt2img_send_to_img2img", "/png_info_send_to_img2img"])
def test_send_to_img2img_fills_the_image_and_its_settings(client, made, api_name):
    path, _ = made
    source = as_gallery(path) if api_name.startswith("/txt2img") else handle_file(str(path))
    values = client.predict(source, n_iter=3, denoising_strength=0.3, api_name=api_name)
    form = filled(values)
    expected = {k: MADE[k] for k in ("checkpoint", "prompt", "negative_prompt", "sampler_name", "scheduler", "steps",
                                     "cfg_scale", "width", "height", "seed", "batch_size")}
    assert {k: form[k] for k in expected} == expected
    assert form["n_iter"] == 3 and form["denoising_strength"] == 0.3  # not in the infotext: current values kept
    images = [v for v in values[len(IMG2IMG_FILL):] if isinstance(v, str) and v.endswith(".png")]
    assert images, values
    with Image.open(images[-1]) as sent, Image.open(path) as original:
        assert sent.tobytes() == original.tobytes() and sent.info.get("parameters") == original.info["parameters"]


def test_send_to_inpaint_puts_the_image_into_the_editor(client, made):
    path, _ = made
    values = client.predict(as_gallery(path), api_name="/txt2img_send_to_inpaint")
    assert filled(values)["prompt"] == MADE["prompt"]
    editor = next(v for v in values if isinstance(v, dict) and "background" in v)
    assert editor["layers"] == []  # no mask painted yet
    with Image.open(editor["background"]) as sent, Image.open(path) as original:
        assert sent.tobytes() == original.tobytes()


def test_png_info_send_to_img2img_reads_a_jpeg_exif_infotext(client, tmp_path):
    text = ("a castle\nNegative prompt: fog\nSteps: 5, Sampler: Euler, Schedule type: Karras, CFG scale: 5, Seed: 9, "
            "Size: 64x64, Denoising strength: 0.45, Version: v1.10.1")
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"UNICODE\0" + text.encode("utf-16-be")  # as A1111 writes JPEGs
    jpeg = tmp_path / "a1111.jpg"
    Image.new("RGB", (64, 64), "gray").save(jpeg, exif=exif)
    form = filled(client.predict(handle_file(str(jpeg)), api_name="/png_info_send_to_img2img"))
    assert (form["prompt"], form["negative_prompt"], form["steps"], form["seed"]) == ("a castle", "fog", 5, 9)
    assert form["denoising_strength"] == 0.45 and form["scheduler"] == "Karras"


def test_png_info_send_to_img2img_without_an_image_is_a_clear_error(client):
    with pytest.raises(Exception, match="Drop an image into PNG Info first"):
        client.predict(None, api_name="/png_info_send_to_img2img")
