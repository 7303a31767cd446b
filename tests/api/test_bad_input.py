"""Bad input, table-driven, over HTTP against the served app (REST API and the UI's Gradio events): each case is
refused with a 4xx naming the field (API) or a readable error (UI), before any generation runs; the server keeps
serving and no file is left in outputs. A few odd-but-valid images (CMYK, 16-bit, alpha, palette, animated) are
accepted and come back as ordinary images.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.requests.limits import MAX_JOB_PIXELS, MAX_OUTPUT_IMAGE_PIXELS, MAX_PROMPT_CHARS
from tests.support.api import UI_USER
from tests.support.ui_client import Client

TRAVERSAL = "../../../../etc/passwd"
MB_PROMPT = "a teapot, " * 100_000  # 1 MB
T2I = {"prompt": "a teapot", "steps": 1, "width": 64, "height": 64, "seed": 11, "sampler_name": "Euler",
       "save_images": True}


def png(image: Image.Image, **save: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
GOOD = png(NOISE)
BOMB = png(Image.new("1", (12_000, 12_000)))  # 144 megapixels in ~20 KB
BIG = png(Image.new("RGB", (2000, 2000), (90, 140, 200)))


def i2i(**fields: Any) -> dict:
    return {**T2I, "steps": 2, "init_images": [b64(GOOD)], "denoising_strength": 0.5, **fields}


def extras(**fields: Any) -> dict:
    return {"image": b64(GOOD), "upscaler_1": "None", "upscaling_resize": 1, **fields}


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: Any = None  # sent as JSON (NaN and Infinity as JavaScript writes them)
    raw: str | None = None  # sent as it is
    field: str = ""  # must appear in the error's detail or errors
    says: str = ""  # and this too (a limit, say)


API_CASES = [
    # sizes
    Case("width-not-multiple-of-8", "txt2img", {**T2I, "width": 100}, field="width", says="multiple of 8"),
    Case("height-not-multiple-of-8", "txt2img", {**T2I, "height": 65}, field="height"),
    Case("width-zero", "txt2img", {**T2I, "width": 0}, field="width"),
    Case("height-negative", "txt2img", {**T2I, "height": -64}, field="height"),
    Case("100000x100000", "txt2img", {**T2I, "width": 100_000, "height": 100_000}, field="width", says="4096"),
    Case("img2img-width-odd", "img2img", i2i(width=100), field="width"),
    # steps
    Case("steps-zero", "txt2img", {**T2I, "steps": 0}, field="steps"),
    Case("steps-negative", "txt2img", {**T2I, "steps": -5}, field="steps"),
    Case("steps-huge", "txt2img", {**T2I, "steps": 10**9}, field="steps", says="150"),
    Case("steps-beyond-int64", "txt2img", {**T2I, "steps": 2**70}, field="steps"),
    Case("steps-fraction", "txt2img", {**T2I, "steps": 2.5}, field="steps"),
    Case("hires-steps-huge", "txt2img", {**T2I, "enable_hr": True, "hr_second_pass_steps": 10**6},
         field="hr_second_pass_steps"),
    # CFG and other numbers
    Case("cfg-nan", "txt2img", {**T2I, "cfg_scale": float("nan")}, field="cfg_scale"),
    Case("cfg-infinity", "txt2img", {**T2I, "cfg_scale": float("inf")}, field="cfg_scale"),
    Case("cfg-minus-infinity", "txt2img", {**T2I, "cfg_scale": float("-inf")}, field="cfg_scale"),
    Case("cfg-overflow-literal", "txt2img", raw=json.dumps(T2I)[:-1] + ', "cfg_scale": 1e400}', field="cfg_scale"),
    Case("denoising-nan", "img2img", i2i(denoising_strength=float("nan")), field="denoising_strength"),
    Case("subseed-strength-inf", "txt2img", {**T2I, "subseed_strength": float("inf")}, field="subseed_strength"),
    Case("hires-scale-nan", "txt2img", {**T2I, "enable_hr": True, "hr_scale": float("nan")}, field="hr_scale"),
    Case("seed-huge", "txt2img", {**T2I, "seed": 2**40}, field="seed"),
    # prompts
    Case("prompt-1mb", "txt2img", {**T2I, "prompt": MB_PROMPT}, field="prompt", says=f"{MAX_PROMPT_CHARS:,}"),
    Case("negative-prompt-1mb", "txt2img", {**T2I, "negative_prompt": MB_PROMPT}, field="negative_prompt"),
    Case("hires-prompt-1mb", "txt2img", {**T2I, "enable_hr": True, "hr_prompt": MB_PROMPT}, field="hr_prompt"),
    Case("img2img-prompt-1mb", "img2img", i2i(prompt=MB_PROMPT), field="prompt"),
    # unknown names, and path traversal in each name
    Case("sampler-unknown", "txt2img", {**T2I, "sampler_name": "Euler Z"}, field="sampler_name"),
    Case("sampler-traversal", "txt2img", {**T2I, "sampler_name": TRAVERSAL}, field="sampler_name"),
    Case("scheduler-unknown", "txt2img", {**T2I, "scheduler": "Sideways"}, field="scheduler"),
    Case("model-unknown", "txt2img", {**T2I, "override_settings": {"sd_model_checkpoint": "no-such-model"}},
         field="override_settings.sd_model_checkpoint", says="no-such-model"),
    Case("model-traversal", "txt2img", {**T2I, "override_settings": {"sd_model_checkpoint": TRAVERSAL}},
         field="override_settings.sd_model_checkpoint"),
    Case("model-absolute-path", "txt2img", {**T2I, "override_settings": {"sd_model_checkpoint": "/etc/passwd"}},
         field="override_settings.sd_model_checkpoint"),
    Case("vae-unknown", "txt2img", {**T2I, "override_settings": {"sd_vae": "no-such-vae.safetensors"}},
         field="sd_vae"),
    Case("vae-traversal", "txt2img", {**T2I, "override_settings": {"sd_vae": TRAVERSAL}}, field="sd_vae"),
    Case("lora-unknown", "txt2img", {**T2I, "prompt": "a teapot <lora:no-such-lora:1>"}, field="prompt"),
    Case("lora-traversal", "txt2img", {**T2I, "prompt": f"a teapot <lora:{TRAVERSAL}:1>"}, field="prompt"),
    Case("style-unknown", "txt2img", {**T2I, "styles": ["no such style"]}, field="styles"),
    Case("style-traversal", "txt2img", {**T2I, "styles": [TRAVERSAL]}, field="styles"),
    Case("hires-upscaler-unknown", "txt2img", {**T2I, "enable_hr": True, "hr_upscaler": "Nope-x9"},
         field="hr_upscaler"),
    Case("hires-upscaler-traversal", "txt2img", {**T2I, "enable_hr": True, "hr_upscaler": TRAVERSAL},
         field="hr_upscaler"),
    Case("hires-sampler-unknown", "txt2img", {**T2I, "enable_hr": True, "hr_sampler_name": "Nope"},
         field="hr_sampler_name"),
    Case("refiner-traversal", "txt2img", {**T2I, "refiner_checkpoint": TRAVERSAL, "refiner_switch_at": 0.5},
         field="refiner_checkpoint"),
    Case("script-unknown", "txt2img", {**T2I, "script_name": TRAVERSAL}, field="script_name"),
    Case("extras-upscaler-unknown", "extra-single-image", extras(upscaler_1="Nope-x9", upscaling_resize=2),
         field="upscaler_1"),
    Case("extras-upscaler-traversal", "extra-single-image", extras(upscaler_1=TRAVERSAL, upscaling_resize=2),
         field="upscaler_1"),
    Case("extras-upscaler-2-traversal", "extra-single-image",
         extras(upscaler_2=TRAVERSAL, upscaling_resize=2, extras_upscaler_2_visibility=0.5), field="upscaler_2"),
    Case("options-model-traversal", "options", {"sd_model_checkpoint": TRAVERSAL}, field="sd_model_checkpoint"),
    Case("img2img-model-traversal", "img2img", i2i(override_settings={"sd_model_checkpoint": TRAVERSAL}),
         field="override_settings.sd_model_checkpoint"),
    # uploads
    Case("init-image-zero-bytes", "img2img", i2i(init_images=["data:image/png;base64,"]), field="init_images.0",
         says="empty"),
    Case("init-image-not-base64", "img2img", i2i(init_images=["not base64 at all!"]), field="init_images.0"),
    Case("init-image-text", "img2img", i2i(init_images=[b64(b"hello, I am not a picture")]),
         field="init_images.0", says="not an image"),
    Case("init-image-truncated-150", "img2img", i2i(init_images=[b64(GOOD[:150])]), field="init_images.0"),
    Case("init-image-no-iend", "img2img", i2i(init_images=[b64(GOOD[:-12])]), field="init_images.0"),
    Case("init-image-jpeg-truncated", "img2img", i2i(init_images=[b64(png(NOISE, format="JPEG")[:400])]),
         field="init_images.0"),
    Case("init-image-bomb", "img2img", i2i(init_images=[b64(BOMB)]), field="init_images.0", says="megapixels"),
    Case("init-image-url", "img2img", i2i(init_images=["file:///etc/passwd"]), field="init_images.0"),
    Case("mask-truncated", "img2img", i2i(mask=b64(GOOD[:200])), field="mask"),
    Case("mask-zero-bytes", "img2img", i2i(mask="data:image/png;base64,"), field="mask"),
    Case("extras-image-truncated", "extra-single-image", extras(image=b64(GOOD[:150])), field="image"),
    Case("extras-image-bomb", "extra-single-image", extras(image=b64(BOMB)), field="image"),
    Case("extras-batch-text", "extra-batch-images", {**extras(image=None), "imageList": [
        {"data": b64(GOOD), "name": "a.png"}, {"data": b64(b"GIF89a..."), "name": "b.gif"}]}, field="imageList.1.data"),
    Case("png-info-zero-bytes", "png-info", {"image": "data:image/png;base64,"}, field="image"),
    Case("png-info-truncated", "png-info", {"image": b64(GOOD[:-12])}, field="image"),
    # results too large to hold, refused up front
    Case("extras-2000-times-8", "extra-single-image", extras(image=b64(BIG), upscaling_resize=8, upscaler_1="Lanczos"),
         field="upscaling_resize", says=f"{MAX_OUTPUT_IMAGE_PIXELS / 1e6:.1f} megapixels"),
    Case("extras-scale-to-16384", "extra-single-image",
         extras(resize_mode=1, upscaling_resize_w=16384, upscaling_resize_h=16384, upscaler_1="Lanczos"),
         field="upscaling_resize_w", says="per image"),
    Case("4096-squared-times-16", "txt2img", {**T2I, "width": 4096, "height": 4096, "batch_size": 8, "n_iter": 2},
         field="n_iter", says=f"{MAX_JOB_PIXELS / 1e6:.1f} megapixels"),
    Case("img2img-4096-squared-times-16", "img2img", i2i(width=4096, height=4096, batch_size=8, n_iter=2),
         field="n_iter", says="per job"),
    Case("hires-beyond-4096", "txt2img", {**T2I, "width": 1024, "height": 1024, "enable_hr": True, "hr_scale": 8},
         field="hr_scale", says="4096"),
    # huge batches
    Case("batch-size-huge", "txt2img", {**T2I, "batch_size": 10**6}, field="batch_size"),
    Case("batch-count-huge", "txt2img", {**T2I, "n_iter": 10**6}, field="n_iter"),
    Case("batch-size-zero", "txt2img", {**T2I, "batch_size": 0}, field="batch_size"),
    Case("extras-batch-5-of-8000-squared", "extra-batch-images", {**extras(image=None), "upscaling_resize": 4,
         "upscaler_1": "Lanczos", "imageList": [{"data": b64(BIG), "name": f"{i}.png"} for i in range(5)]},
         field="upscaling_resize", says="per job"),
    # wrong JSON types and shapes
    Case("steps-string", "txt2img", {**T2I, "steps": "twenty"}, field="steps"),
    Case("prompt-number", "txt2img", {**T2I, "prompt": 123}, field="prompt"),
    Case("width-list", "txt2img", {**T2I, "width": [512]}, field="width"),
    Case("styles-string", "txt2img", {**T2I, "styles": "a string"}, field="styles"),
    Case("override-settings-string", "txt2img", {**T2I, "override_settings": "sd_vae=None"},
         field="override_settings"),
    Case("save-images-maybe", "txt2img", {**T2I, "save_images": "maybe"}, field="save_images"),
    Case("init-images-string", "img2img", i2i(init_images=b64(GOOD)), field="init_images"),
    Case("body-a-list", "txt2img", [T2I], field="body"),
    Case("body-not-json", "txt2img", raw='{"prompt": "a teapot", "steps": ', field="body"),
    Case("extras-resize-nan", "extra-single-image", extras(upscaling_resize=float("nan")), field="upscaling_resize"),
]


@pytest.fixture(scope="module")
def outputs(api_app) -> Path:
    return Path(api_app["data_dir"], "outputs")


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()} if folder.exists() else set()


def post(api, case: Case):
    if case.raw is not None:
        return api.post("/" + case.path, content=case.raw, headers={"Content-Type": "application/json"})
    return api.post("/" + case.path, content=json.dumps(case.body), headers={"Content-Type": "application/json"})


def test_the_table_has_at_least_60_api_cases():
    assert len(API_CASES) >= 60 and len({case.id for case in API_CASES}) == len(API_CASES)


@pytest.mark.parametrize("case", API_CASES, ids=lambda case: case.id)
def test_api_refuses_naming_the_field(api, outputs, case):
    before = files_under(outputs)
    response = post(api, case)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()
    message = f"{json.dumps(body.get('detail'))} {body.get('errors')}"  # not the echoed request body
    assert case.field in message, message[:500]
    assert case.says in message, message[:500]
    assert files_under(outputs) == before


ODD_IMAGES = {
    "cmyk-jpeg": (png(NOISE.convert("CMYK"), format="JPEG"), "RGB"),
    "grey-16-bit": (png(Image.fromarray(np.full((64, 64), 40_000, np.uint16))), "L"),
    "alpha": (png(NOISE.convert("RGBA")), "RGBA"),
    "grey-alpha": (png(NOISE.convert("LA")), "RGBA"),
    "palette": (png(NOISE.convert("P")), "RGB"),
    "palette-transparent": (png(NOISE.convert("P"), transparency=0), "RGBA"),
    "animated-gif": (png(NOISE.convert("P"), format="GIF", save_all=True,
                         append_images=[NOISE.convert("P").rotate(90)]), "RGB"),
    "animated-png": (png(NOISE, save_all=True, append_images=[NOISE.rotate(90)]), "RGB"),
}


@pytest.mark.parametrize("name", ODD_IMAGES)
def test_odd_but_valid_images_are_read(api, name):
    data, mode = ODD_IMAGES[name]
    response = api.post("/extra-single-image", json=extras(image=b64(data), save_images=False))
    assert response.status_code == 200, response.text[:500]
    image = Image.open(io.BytesIO(base64.b64decode(response.json()["image"])))
    assert image.size == (64, 64) and image.mode == mode
    if name == "grey-16-bit":  # scaled to 8 bits, not clipped to white
        assert np.asarray(image).mean() == pytest.approx(40_000 / 65535 * 255, abs=1)
    if name.startswith("animated"):  # the first frame
        assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def test_unknown_fields_are_ignored_and_names_are_only_labels(api, api_app, outputs):
    """As A1111: fields the API does not define are ignored; a batch image's name never becomes a path."""
    response = api.post("/txt2img", json={**T2I, "save_images": False, "no_such_field": {"x": 1}, "steps_": "x"})
    assert response.status_code == 200, response.text[:500]
    assert len(response.json()["images"]) == 1
    response = api.post("/extra-batch-images", json={**extras(image=None), "save_images": True,
                                                    "imageList": [{"data": b64(GOOD), "name": TRAVERSAL + ".png"}]})
    assert response.status_code == 200, response.text[:500]
    root = Path(api_app["data_dir"]).parent
    assert not [p for p in root.rglob("passwd*") if p.is_file()]
    assert all(outputs in path.parents for path in files_under(outputs))
    assert api.get("/progress").status_code == 200  # still serving


# The UI: the same kinds of input through the Gradio events of the served app (the page's Generate buttons).
UI_FORM = dict(checkpoint="tiny-sd15", prompt="a teapot", negative_prompt="", sampler_name="Euler a",
               scheduler="Automatic", steps=1, width=64, height=64, seed=4242, batch_size=1, n_iter=1, cfg_scale=7)

UI_CASES = [
    ("txt2img", {"prompt": MB_PROMPT}, "prompt"),
    ("txt2img", {"width": 100}, "width"),
    ("txt2img", {"sampler_name": TRAVERSAL}, "not in the list of choices"),  # Gradio's own check of a dropdown
    ("txt2img", {"styles": ["no such style"]}, "styles"),
    ("txt2img", {"prompt": f"a teapot <lora:{TRAVERSAL}:1>"}, "prompt"),
    ("txt2img", {"checkpoint": TRAVERSAL}, "passwd"),
    ("txt2img", {"width": 2048, "height": 2048, "batch_size": 8, "n_iter": 100}, "n_iter"),
    ("txt2img", {"enable_hr": True, "hr_upscaler": TRAVERSAL, "hr_scale": 2}, "not in the list of choices"),
    ("extras", {"image": None, "upscaler_1": "Lanczos", "upscaling_resize": 8}, "Single image"),
    ("extras", {"upscaler_1": TRAVERSAL, "upscaling_resize": 2}, "upscaler_1"),
    ("extras", {"upscaler_1": "Lanczos", "upscaling_resize": 8, "image": "BIG"}, "per image"),
    ("extras", {"upscaler_1": "None", "upscaling_resize": 1, "image": "TRUNCATED"}, "image: is not a readable image"),
    ("extras", {"source": "Batch", "batch_files": GOOD[:150], "image": None}, "in.png: is not a readable image"),
    ("extras", {"source": "Batch", "batch_files": BOMB, "image": None}, "megapixels"),
    ("img2img", {"init_image": GOOD[:150]}, "init_image: is not a readable image"),
    ("img2img", {"init_image": GOOD[:-12]}, "init_image: is not a readable image"),  # pixels decode, IEND missing
    ("img2img", {"init_image": BOMB}, "init_image: is larger than the limit"),
    ("outpaint", {"outpaint_image": GOOD[:-12], "expand_right": 64}, "outpaint_image: is not a readable image"),
    ("img2img", {"init_image": GOOD, "width": 2048, "height": 2048, "batch_size": 8, "n_iter": 8}, "per job"),
]


@pytest.fixture(scope="module")
def ui(api_app) -> Client:
    return Client(api_app["url"], auth=UI_USER, verbose=False)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Gradio opens the bomb's header
@pytest.mark.parametrize("event, values, field", UI_CASES, ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(UI_CASES)])
def test_ui_events_refuse_with_a_readable_message(ui, outputs, tmp_path, event, values, field):
    from gradio_client import handle_file

    before = files_under(outputs)
    if event == "txt2img":
        call = dict(api_name="/txt2img", **{**UI_FORM, **values})
    elif event == "img2img":
        path = tmp_path / "in.png"
        path.write_bytes(values["init_image"])
        call = dict(api_name="/img2img", **{**UI_FORM, "steps": 2, "denoising_strength": 0.75, "resize_mode": 0,
                                            **values, "init_image": handle_file(str(path))})
    elif event == "outpaint":
        path = tmp_path / "in.png"
        path.write_bytes(values["outpaint_image"])
        call = dict(api_name="/outpaint", **{**UI_FORM, "steps": 2, "denoising_strength": 0.75, "resize_mode": 0,
                                             **values, "outpaint_image": handle_file(str(path))})
    elif "batch_files" in values:
        path = tmp_path / "in.png"
        path.write_bytes(values["batch_files"])
        call = dict(api_name="/extras", resize_mode=0, upscaling_resize=1, upscaler_1="None",
                    **{**values, "batch_files": [handle_file(str(path))]})
    else:
        image = values.get("image", "GOOD")
        path = tmp_path / "in.png"
        path.write_bytes({"BIG": BIG, "TRUNCATED": GOOD[:-12]}.get(image, GOOD))
        call = dict(api_name="/extras", source="Single image", batch_files=None, resize_mode=0,
                    upscaling_resize_w=512, upscaling_resize_h=512, upscaling_crop=True, upscaler_2="None",
                    extras_upscaler_2_visibility=0,
                    **{**values, "image": None if image is None else handle_file(str(path))})
    with pytest.raises(AppError) as raised:
        ui.predict(**call)
    message = str(raised.value)
    assert field in message and "Traceback" not in message and "Internal error" not in message, message[:500]
    assert files_under(outputs) == before
