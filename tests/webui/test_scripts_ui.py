"""Extensions in the Gradio app (gradio_client, the shared live app): the Scripts dropdown runs the X/Y/Z plot
in txt2img and img2img (a labelled grid saved in <mode>-grids), extension sections' values reach their hooks by
name, and a bad value is a readable error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.support.ui_client import Client

FORM = dict(checkpoint="tiny-sd15", prompt="a teapot", negative_prompt="", sampler_name="Euler", scheduler="Automatic",
            steps=1, cfg_scale=7, width=64, height=64, seed=3, batch_size=1, n_iter=1)
XYZ = dict(script_name="X/Y/Z plot", script__xyz_plot__x_type="Steps", script__xyz_plot__x_values="1, 2")


@pytest.fixture(scope="module")
def client(live_app) -> Client:
    return Client(live_app["url"], verbose=False)


def test_the_tabs_show_the_script_menu_and_extension_sections(live_app):
    config = httpx.get(live_app["url"] + "config", timeout=60).json()
    labels = [c.get("props", {}).get("label") for c in config["components"]]
    assert labels.count("Script") == 2 and labels.count("CFG Rescale") == 2 and "X type" in labels


def test_xyz_plot_from_the_txt2img_scripts_menu(client, live_app):
    gallery, info = client.predict(**FORM, **XYZ, script__xyz_plot__y_type="CFG Scale",
                                   script__xyz_plot__y_values="3, 7", api_name="/txt2img")
    assert len(gallery) == 1 and 'X Type: Steps, X Values: "1, 2", Y Type: CFG Scale' in info
    grid = Image.open(gallery[0]["image"])
    assert grid.width > 2 * 64 and grid.height > 2 * 64 and grid.info["parameters"] == info
    saved = sorted(Path(live_app["data_dir"], "outputs", "txt2img-grids").rglob("*.png"))
    assert saved and Image.open(saved[-1]).info["parameters"] == info


def test_xyz_plot_in_img2img_over_denoising(client, tmp_path):
    Image.new("RGB", (64, 64), (200, 120, 40)).save(tmp_path / "start.png")
    gallery, info = client.predict(**{**FORM, "steps": 2}, init_image=handle_file(str(tmp_path / "start.png")),
                                   script_name="X/Y/Z plot", script__xyz_plot__x_type="Denoising",
                                   script__xyz_plot__x_values="0.5, 1", api_name="/img2img")
    assert len(gallery) == 1 and 'X Type: Denoising, X Values: "0.5, 1"' in info


def test_section_values_reach_their_hooks_by_name(client):
    _, info = client.predict(**FORM, ext__cfg_rescale__phi=0.5, ext__prompt_suffix__suffix="ink",
                             api_name="/txt2img")
    assert info.startswith("a teapot, ink\n") and "CFG Rescale \u03c6: 0.5" in info
    _, plain = client.predict(**FORM, api_name="/txt2img")
    assert plain.startswith("a teapot\n") and "CFG Rescale" not in plain


def test_bad_script_values_are_readable_errors(client):
    with pytest.raises(AppError, match="Prompt S/R did not find 'castle'") as err:
        client.predict(**FORM, script_name="X/Y/Z plot", script__xyz_plot__x_type="Prompt S/R",
                       script__xyz_plot__x_values="castle, tower", api_name="/txt2img")
    assert "Traceback" not in str(err.value)
