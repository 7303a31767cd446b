"""The img2img tab's events over real HTTP (gradio_client), on the tiny models of the live app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.support.ui_client import Client

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


# Inpaint: the editor's value is {background, layers, composite}; painted layer pixels are the mask.
INPAINT = dict(mask_blur=0, inpainting_mask_invert=0, inpainting_fill=1, inpaint_full_res=0,
               inpaint_full_res_padding=32)


def stroke_layer(folder: Path, box: tuple[int, int, int, int], size=(96, 80)) -> Path:
    """A transparent layer with an opaque painted rectangle, as the editor's brush leaves it."""
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), box)
    path = folder / f"layer-{'-'.join(map(str, box))}.png"
    layer.save(path)
    return path


def editor_value(background: Path, *layers: Path) -> dict:
    return {"background": handle_file(str(background)), "layers": [handle_file(str(p)) for p in layers],
            "composite": None}


def inpaint(client, **values):
    args = {**FORM, **INPAINT, "width": 96, "height": 80, "inpaint_mask": None, **values}
    return client.predict(**args, api_name="/inpaint")


def changed(result: dict, source: Path) -> np.ndarray:
    out = np.asarray(Image.open(result["image"]).convert("RGB"), dtype=np.int16)
    return np.abs(out - np.asarray(Image.open(source).convert("RGB"), dtype=np.int16)).max(axis=-1) > 0


def test_inpaint_repaints_only_the_painted_area(client, live_app, source, tmp_path):
    gallery, info = inpaint(client, inpaint_editor=editor_value(source, stroke_layer(tmp_path, (8, 8, 40, 40))),
                            seed=777)
    diff = changed(gallery[0], source)
    assert diff[12:36, 12:36].mean() > 0.5  # the painted square was repainted
    assert not diff[:, 56:].any() and not diff[56:, :].any()  # far from it, the source pixels are kept
    assert "Mask blur: 0" in info and "Denoising strength: 0.75" in info
    assert saved(live_app["data_dir"], "img2img", 777)


def test_inpaint_with_an_uploaded_mask_and_only_masked(client, source, tmp_path):
    mask = Image.new("L", (96, 80), 0)
    mask.paste(255, (60, 40, 90, 76))
    mask.save(tmp_path / "mask.png")
    gallery, _ = inpaint(client, inpaint_editor=editor_value(source),
                         inpaint_mask=handle_file(str(tmp_path / "mask.png")),
                         inpaint_full_res=1, inpaint_full_res_padding=8, seed=778)
    diff = changed(gallery[0], source)
    assert diff[44:72, 64:86].mean() > 0.5 and not diff[:30, :50].any()


def test_inpaint_mask_mode_inverts_the_painted_area(client, source, tmp_path):
    gallery, _ = inpaint(client, inpaint_editor=editor_value(source, stroke_layer(tmp_path, (8, 8, 40, 40))),
                         inpainting_mask_invert=1, seed=779)
    diff = changed(gallery[0], source)
    assert not diff[8:40, 8:40].any() and diff[:, 56:].mean() > 0.5


def test_inpaint_without_a_mask_or_image_says_what_is_missing(client, source):
    with pytest.raises(AppError, match="Paint over the area"):
        inpaint(client, inpaint_editor=editor_value(source))
    with pytest.raises(AppError, match="Inpaint editor"):
        inpaint(client, inpaint_editor=None)


OUTPAINT = dict(expand_left=0, expand_right=0, expand_up=0, expand_down=0, outpaint_mask_blur=4,
                outpaint_inpainting_fill=1)


def outpaint(client, source: Path, **values):
    args = {**FORM, **OUTPAINT, "width": 96, "height": 80, "outpaint_image": handle_file(str(source)), **values}
    return client.predict(**args, api_name="/outpaint")


def test_outpaint_extends_the_canvas_and_keeps_the_image(client, live_app, source):
    gallery, info = outpaint(client, source, expand_right=32, expand_up=16, seed=881)
    out = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"), dtype=np.int16)
    assert out.shape == (96, 128, 3) and "Size: 128x96" in info
    assert 'Outpaint: "left 0, right 32, up 16, down 0"' in info
    src = np.asarray(Image.open(source).convert("RGB"), dtype=np.int16)
    # Far from the new edges (the seam and the mask blur reach ~20 px in), the source is kept exactly.
    assert np.array_equal(out[16 + 24:, :60], src[24:, :60])
    assert saved(live_app["data_dir"], "img2img", 881)


def test_outpaint_needs_a_side_and_multiples_of_8(client, source):
    with pytest.raises(AppError, match="Set at least one of Expand"):
        outpaint(client, source)
    with pytest.raises(AppError, match="expand_left.*multiple of 8"):
        outpaint(client, source, expand_left=12)
    with pytest.raises(AppError, match="Outpaint sub-tab"):
        client.predict(**FORM, **OUTPAINT, outpaint_image=None, api_name="/outpaint")


def test_the_page_event_streams_previews_from_the_open_sub_tab(client, source):
    """/img2img_live is the page's Generate: the sub-tab comes from the page's state (img2img here)."""
    job = client.submit(**{**FORM, **INPAINT, **OUTPAINT, "steps": 8, "denoising_strength": 1.0},
                        init_image=handle_file(str(source)), inpaint_editor=None, inpaint_mask=None,
                        outpaint_image=None, api_name="/img2img_live")
    job.result(timeout=120)
    outputs = job.outputs()
    assert any(isinstance(o[0], dict) and o[0].get("value") for o in outputs[:-1]), outputs
    gallery, info = outputs[-1][1], outputs[-1][2]
    assert gallery and "Denoising strength: 1" in info
