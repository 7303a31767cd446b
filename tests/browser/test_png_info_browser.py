"""End-to-end: an image made by the app goes through PNG Info back into txt2img and is made again.

Debian's chromium through Playwright, on the session's ``live_app``. Fixtures in tests/browser/conftest.py;
helpers and the skip without chromium in tests/support/browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import expect

from pipelines.infotext.codec import parse_infotext
from pipelines.requests import Txt2ImgRequest
from tests.support.browser import ASSERT_TIMEOUT_MS, BROWSER_MARKS, GENERATE_TIMEOUT_MS, saved_pngs

pytestmark = BROWSER_MARKS

# Every value differs from the form's defaults, and the model from the selected one, so each must be pasted.
ORIGINAL = Txt2ImgRequest(prompt="a copper kettle, steam", negative_prompt="blurry, dark", sampler_name="DPM++ 2M",
                          scheduler="Karras", steps=3, cfg_scale=6.5, width=64, height=80, seed=24680,
                          model="tiny-sd15-b")
# Values that belong to one file rather than to how it was made (none in what Atelier writes for a
# single image; A1111 adds these for images of a batch).
FILE_SPECIFIC = ("Batch pos",)


def comparable(infotext: str) -> dict[str, str]:
    return {k: v for k, v in parse_infotext(infotext).items() if k not in FILE_SPECIFIC}


def test_png_info_send_to_txt2img_reproduces_the_image(page, live_app):
    data_dir: Path = live_app["data_dir"]
    made = live_app["ctx"].engine.generate(ORIGINAL).images[0]
    assert made.path is not None

    # PNG Info: upload the file, read its parameters and the model they name.
    page.get_by_role("tab", name="PNG Info", exact=True).click()
    page.locator("#png_info_image input[type=file]").set_input_files(str(made.path))
    parameters = page.locator("#png_info_parameters textarea")
    expect(parameters).to_have_value(made.infotext, timeout=ASSERT_TIMEOUT_MS)
    expect(page.locator("#png_info_model")).to_contain_text(re.compile(r"Model: tiny-sd15-b \[[0-9a-f]{10}\]"))

    # Send to txt2img: the tab switches and every named field is filled, the checkpoint too.
    page.locator("#png_info_send_txt2img").click()
    expect(page.get_by_role("tab", name="txt2img", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.locator("#txt2img_prompt textarea")).to_have_value(ORIGINAL.prompt)
    expect(page.locator("#txt2img_negative_prompt textarea")).to_have_value(ORIGINAL.negative_prompt)
    expect(page.locator("#txt2img_seed input")).to_have_value(str(ORIGINAL.seed))
    for label, value in (("Sampling steps", ORIGINAL.steps), ("Width", ORIGINAL.width),
                         ("Height", ORIGINAL.height), ("CFG Scale", ORIGINAL.cfg_scale)):
        expect(page.get_by_label(f"number input for {label}", exact=True)).to_have_value(f"{value:g}")
    expect(page.get_by_role("combobox", name="Sampling method")).to_have_value(ORIGINAL.sampler_name)
    expect(page.get_by_role("combobox", name="Schedule type")).to_have_value(ORIGINAL.scheduler)
    checkpoint = page.get_by_role("combobox", name="Stable Diffusion checkpoint")
    expect(checkpoint).to_have_value(re.compile(r"^tiny-sd15-b( \[[0-9a-f]{10}\])?$"))

    # Generate: the same parameters, and the same pixels.
    before = saved_pngs(data_dir)
    page.locator("#txt2img_generate").click()
    expect(page.locator("#txt2img_gallery img").first).to_be_visible(timeout=GENERATE_TIMEOUT_MS)
    info_box = page.locator("#txt2img_info textarea")
    expect(info_box).to_have_value(re.compile(r"Seed: "))
    assert comparable(info_box.input_value()) == comparable(made.infotext)
    new = saved_pngs(data_dir) - before
    assert len(new) == 1, sorted(map(str, new))
    with Image.open(new.pop()) as again, Image.open(made.path) as original:
        assert comparable(again.info["parameters"]) == comparable(original.info["parameters"])
        assert np.array_equal(np.asarray(again), np.asarray(original)), "the image was not reproduced"
