"""The PNG Info tab and the txt2img paste button over real HTTP (gradio_client), on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest
from gradio.data_classes import ImageData
from gradio_client import handle_file
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines.infotext.png_info import EXIF_IFD, USER_COMMENT
from tests.support.ui_client import Client
from webui.tabs.txt2img import PASTE_NAMES

MADE = dict(checkpoint="tiny-sd15-b", prompt="a teapot, on a table", negative_prompt="blurry",
            sampler_name="DPM++ 2M", scheduler="Karras", steps=3, cfg_scale=6.5, width=64, height=80, seed=321,
            batch_size=1, n_iter=1)
FORM_ORDER = ("checkpoint", "prompt", "negative_prompt", "sampler_name", "scheduler", "steps", "cfg_scale", "width",
              "height", "seed", "batch_size", "n_iter")
ALL_FIELDS = PASTE_NAMES  # FORM_ORDER, the styles, the hires fix accordion's inputs, the quick settings


def _named(values) -> dict:
    """The FORM_ORDER fields of a form's outputs (the hires inputs are tested in test_hires_tab.py)."""
    everything = dict(zip(ALL_FIELDS, values, strict=True))
    return {name: everything[name] for name in FORM_ORDER}


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


@pytest.fixture(scope="module")
def made_png(client) -> tuple[Path, str]:
    """A PNG made by the app and downloaded from it, with its generation info."""
    gallery, info = client.predict(**MADE, api_name="/txt2img")
    return Path(gallery[0]["image"]), info


def test_png_info_shows_the_parameters_of_an_atelier_png(client, made_png):
    path, info = made_png
    parameters, items, model = client.predict(image=handle_file(str(path)), api_name="/png_info")
    assert parameters == info and items == ""
    assert "Read from: parameters." in model and "Model: tiny-sd15-b \\[" in model


def test_paste_to_txt2img_returns_every_field_the_image_names(client, made_png):
    _, info = made_png
    values = client.predict(infotext=info, batch_size=3, n_iter=2, api_name="/paste_to_txt2img")
    expected = {**MADE, "batch_size": 3, "n_iter": 2}  # not in the infotext: current values kept
    assert _named(values) == expected


def test_read_parameters_button_reads_the_prompt_box(client, made_png):
    _, info = made_png
    values = client.predict(prompt=info, api_name="/txt2img_read_parameters")
    assert _named(values) == MADE


def test_a_plain_prompt_changes_nothing(client):
    values = client.predict(prompt="just a prompt", steps=7, api_name="/txt2img_read_parameters")
    assert values[FORM_ORDER.index("prompt")] == "just a prompt" and values[FORM_ORDER.index("steps")] == 7


def test_missing_model_keeps_the_checkpoint_and_says_so(client, tmp_path):
    text = ("a castle\nSteps: 4, Sampler: Euler, Schedule type: Automatic, CFG scale: 5, Seed: 9, Size: 64x64, "
            "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1")
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"UNICODE\0" + text.encode("utf-16-be")  # as A1111 writes JPEGs
    jpeg = tmp_path / "a1111.jpg"
    Image.new("RGB", (64, 64), "gray").save(jpeg, exif=exif)
    parameters, _, model = client.predict(image=handle_file(str(jpeg)), api_name="/png_info")
    assert parameters == text and "Read from: EXIF UserComment." in model
    assert "v1-5-pruned-emaonly \\[6ce0161689\\]; it is not installed" in model
    values = _named(client.predict(infotext=text, api_name="/paste_to_txt2img"))
    assert values["checkpoint"] == "tiny-sd15" and values["seed"] == 9 and values["sampler_name"] == "Euler"


def test_other_tools_chunks_are_shown_raw(client, tmp_path):
    workflow = json.dumps({"nodes": [{"id": 3, "type": "KSampler", "widgets_values": [5, "fixed"]}]})
    info = PngInfo()
    info.add_text("workflow", workflow)
    path = tmp_path / "comfy.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    parameters, items, model = client.predict(image=handle_file(str(path)), api_name="/png_info")
    assert parameters == "" and model == "No generation parameters in this image."
    assert "**workflow**" in items and workflow in items


def test_gradio_image_preprocessing_keeps_text_chunks(tmp_path):
    """The check behind the tab's choice: Gradio hands the upload over with its chunks intact.

    ``type="filepath"`` (used) passes the received file itself; ``type="pil"`` with
    ``image_mode=None`` would keep them too.
    """
    info = PngInfo()
    info.add_text("parameters", "p\nSteps: 1, Sampler: Euler, Seed: 1")
    path = tmp_path / "in.png"
    Image.new("RGBA", (8, 8)).save(path, pnginfo=info)
    payload = ImageData(path=str(path), orig_name="in.png")
    assert gr.Image(type="filepath", image_mode=None).preprocess(payload) == str(path)
    pil = gr.Image(type="pil", image_mode=None).preprocess(payload)
    assert pil.mode == "RGBA" and pil.info["parameters"].startswith("p\n")


def test_values_beyond_the_form_sliders_are_kept_out(client):
    text = "wide\nSteps: 4, Sampler: Euler, Seed: 3, Size: 3072x512"  # valid for a request, beyond the slider
    values = _named(client.predict(infotext=text, width=256, api_name="/paste_to_txt2img"))
    assert values["width"] == 256 and values["height"] == 512 and values["seed"] == 3


def test_hub_model_named_by_an_image_is_offered_and_downloaded(tmp_path, model_store):
    from pipelines.context import AppContext
    from tests.support.apps import free_port, make_settings
    from tests.support.hub_server import LocalHub
    from webui.server import serve

    text = "a fox\nSteps: 3, Sampler: Euler a, Seed: 1, Size: 64x64, Model: atelier-test/remote-sd15"
    info = PngInfo()
    info.add_text("parameters", text)
    path = tmp_path / "hub.png"
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    with LocalHub() as hub:
        hub.add_repo("atelier-test/remote-sd15", model_store / "tiny-sd15")
        ctx = AppContext.build(make_settings(tmp_path / "data", hub_offline=False, hf_endpoint=hub.endpoint))
        demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), block=False)
        try:
            client = Client(url, verbose=False)
            _, _, model = client.predict(image=handle_file(str(path)), api_name="/png_info")
            assert "it looks like the Hub repo atelier-test/remote-sd15" in model
            model, _ = client.predict(text=text, api_name="/png_info_download")  # the repo is in session state
            assert model.startswith("Downloaded atelier-test/remote-sd15.")
            assert "Model: atelier-test/remote-sd15" in model
            values = _named(client.predict(infotext=text, api_name="/paste_to_txt2img"))
            assert values["checkpoint"] == "atelier-test/remote-sd15"
        finally:
            demo.close()
