"""The txt2img tab's "Hires. fix" accordion over real HTTP (gradio_client): generate, paste, errors, choices."""

from __future__ import annotations

import httpx
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.infotext.codec import parse_infotext
from tests.support.ui_client import Client
from webui.tabs.txt2img import PASTE_NAMES

FORM = dict(checkpoint="tiny-sd15", prompt="a teapot", negative_prompt="", sampler_name="Euler a",
            scheduler="Automatic", steps=3, cfg_scale=7, width=64, height=64, seed=9, batch_size=1, n_iter=1)
HIRES = dict(enable_hr=True, hr_upscaler="Latent", hr_second_pass_steps=2, denoising_strength=0.6, hr_scale=2,
             hr_resize_x=0, hr_resize_y=0, hr_sampler_name="Use same sampler", hr_scheduler="Use same scheduler",
             hr_prompt="", hr_negative_prompt="")
FIELDS = list(PASTE_NAMES)  # the read-parameters outputs: the form's components, then the quick settings


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


def test_accordion_is_closed_with_hires_off_and_lists_latent_modes_and_upscalers(live_app):
    config = httpx.get(live_app["url"] + "config", timeout=60).json()
    by_id = {c.get("props", {}).get("elem_id"): c["props"] for c in config["components"]}
    assert by_id["txt2img_hr"]["open"] is False and by_id["txt2img_hr"]["label"] == "Hires. fix"
    assert by_id["txt2img_enable_hr"]["value"] is False
    choices = [c[0] if isinstance(c, list | tuple) else c for c in by_id["txt2img_hr_upscaler"]["choices"]]
    assert choices[:2] == ["Latent", "Latent (antialiased)"] and {"Lanczos", "Nearest"} <= set(choices)


def test_generate_with_hires_fix_gives_the_upscaled_image(client):
    gallery, info = client.predict(**FORM, **HIRES, api_name="/txt2img")
    assert Image.open(gallery[0]["image"]).size == (128, 128)
    params = parse_infotext(info)
    assert (params["Size-1"], params["Hires upscale"], params["Hires steps"]) == ("64", "2", "2")
    assert params["Denoising strength"] == "0.6" and params["Hires upscaler"] == "Latent"


def test_unticked_the_accordion_values_change_nothing(client):
    gallery, info = client.predict(**FORM, **{**HIRES, "enable_hr": False, "hr_scale": 3}, api_name="/txt2img")
    assert Image.open(gallery[0]["image"]).size == (64, 64) and "Hires" not in info


def test_resize_with_an_image_upscaler_and_a_hires_sampler(client):
    gallery, info = client.predict(**FORM, **{**HIRES, "hr_upscaler": "Lanczos", "hr_resize_x": 96, "hr_resize_y": 128,
                                              "hr_sampler_name": "DPM++ 2M"}, api_name="/txt2img")
    assert Image.open(gallery[0]["image"]).size == (96, 128)
    params = parse_infotext(info)
    assert params["Hires resize"] == "96x128" and params["Hires sampler"] == "DPM++ 2M"


def test_bad_hires_value_is_a_readable_error_naming_it(client):
    with pytest.raises(AppError) as err:
        client.predict(**FORM, **{**HIRES, "hr_resize_x": 16}, api_name="/txt2img")
    assert "hr_resize_x" in str(err.value) and "Traceback" not in str(err.value)


def test_read_parameters_fills_the_accordion(client):
    infotext = ("a castle\nSteps: 5, Sampler: Euler, Seed: 3, Size: 64x64, Denoising strength: 0.45, "
                "Hires resize: 128x0, Hires steps: 4, Hires upscaler: Latent (bicubic), Hires sampler: DPM++ 2M, "
                "Hires prompt: \"a castle, sharp\"")
    values = dict(zip(FIELDS, client.predict(**{**FORM, "prompt": infotext}, **{**HIRES, "enable_hr": False},
                                             api_name="/txt2img_read_parameters"), strict=True))
    assert values["enable_hr"] is True and values["hr_upscaler"] == "Latent (bicubic)"
    assert (values["hr_resize_x"], values["hr_resize_y"], values["hr_second_pass_steps"]) == (128, 0, 4)
    assert values["denoising_strength"] == 0.45 and values["hr_sampler_name"] == "DPM++ 2M"
    assert values["hr_scheduler"] == "Use same scheduler" and values["hr_prompt"] == "a castle, sharp"


def test_read_parameters_without_hires_unticks_it_and_keeps_the_accordion(client):
    infotext = "a lake\nSteps: 5, Sampler: Euler, Seed: 3, Size: 64x64"
    values = dict(zip(FIELDS, client.predict(**{**FORM, "prompt": infotext}, **{**HIRES, "hr_scale": 1.5},
                                             api_name="/txt2img_read_parameters"), strict=True))
    assert values["enable_hr"] is False
    assert values["hr_scale"] == 1.5 and values["denoising_strength"] == 0.6 and values["hr_second_pass_steps"] == 2


def test_read_parameters_keeps_an_upscaler_that_is_not_installed(client):
    infotext = ("a lake\nSteps: 5, Sampler: Euler, Seed: 3, Size: 64x64, Denoising strength: 0.3, Hires upscale: 2, "
                "Hires upscaler: 4x-UltraSharp")
    values = dict(zip(FIELDS, client.predict(**{**FORM, "prompt": infotext}, **HIRES,
                                             api_name="/txt2img_read_parameters"), strict=True))
    assert values["enable_hr"] is True and values["hr_upscaler"] == "Latent" and values["denoising_strength"] == 0.3
