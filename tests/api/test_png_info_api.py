"""POST /sdapi/v1/png-info: base64 or data: URI in; infotext, other metadata and parsed parameters out."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.support.api import FAST

INFOTEXT = ("a lighthouse, at dusk\nNegative prompt: people\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, "
            "CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly")


def _b64(image: Image.Image, fmt: str = "PNG", **save) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return base64.b64encode(buffer.getvalue()).decode()


def _png_with(chunks: dict[str, str]) -> str:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return _b64(Image.new("RGB", (8, 8)), pnginfo=info)


def test_an_image_made_by_txt2img_reads_back(api):
    made = api.post("/txt2img", json=FAST).json()
    infotext = json.loads(made["info"])["infotexts"][0]
    body = api.post("/png-info", json={"image": made["images"][0]}).json()
    assert body["info"] == infotext and "parameters" not in body["items"]
    params = body["parameters"]
    assert params["Prompt"] == "a teapot" and params["Steps"] == "3" and params["Seed"] == "11"
    assert (params["Size-1"], params["Size-2"]) == ("64", "64") and params["Sampler"] == "Euler a"


def test_data_uri_and_other_chunks(api):
    image = _png_with({"parameters": INFOTEXT, "Software": "my tool"})
    body = api.post("/png-info", json={"image": "data:image/png;base64," + image}).json()
    assert body["info"] == INFOTEXT and body["items"] == {"Software": "my tool"}
    assert body["parameters"]["Negative prompt"] == "people" and body["parameters"]["Schedule type"] == "Karras"
    assert body["parameters"]["Prompt"] == "a lighthouse, at dusk"


def test_an_image_without_infotext(api):
    body = api.post("/png-info", json={"image": _png_with({"Comment": "hello"})}).json()
    assert body == {"info": "", "items": {"Comment": "hello"}, "parameters": {}}


def test_jpeg_with_the_infotext_in_exif_user_comment(api):
    image = Image.new("RGB", (8, 8))
    exif = image.getexif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + INFOTEXT.encode("utf-16-be")
    body = api.post("/png-info", json={"image": _b64(image, "JPEG", exif=exif)}).json()
    assert body["info"] == INFOTEXT and body["items"]["exif comment"] == INFOTEXT
    assert body["parameters"]["Seed"] == "1234"


def test_an_empty_image_gives_an_empty_answer_as_in_a1111(api):
    assert api.post("/png-info", json={"image": ""}).json() == {"info": "", "items": {}, "parameters": {}}


def test_line_wrapped_base64_is_accepted(api):
    image = _png_with({"parameters": INFOTEXT})
    wrapped = "\n".join(image[i:i + 76] for i in range(0, len(image), 76))
    assert api.post("/png-info", json={"image": wrapped}).json()["info"] == INFOTEXT


@pytest.mark.parametrize("payload", [
    {"image": "this is not base64!"},
    {"image": base64.b64encode(b"not an image at all").decode()},
    {"image": "data:image/png,rawbytes"},
    {"image": "http://example.com/a.png"},
    {"image": 5},
    {},
])
def test_bad_images_are_a_422_naming_the_field(api, payload):
    response = api.post("/png-info", json=payload)
    assert response.status_code == 422, response.text
    body = response.json()
    assert "image" in body["errors"] and set(body) == {"error", "detail", "body", "errors"}
