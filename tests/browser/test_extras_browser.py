"""End-to-end: the Upscale tab and a result action, driven in Debian's chromium through Playwright.

The tests share one page (``module_page``), in this order: each opens its tab and waits for its own results.

Fixtures in tests/browser/conftest.py; helpers and the skip without chromium in tests/support/browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from pipelines.infotext.codec import parse_infotext
from pipelines.requests import Txt2ImgRequest
from tests.support.browser import ASSERT_TIMEOUT_MS, BROWSER_MARKS, GENERATE_TIMEOUT_MS, saved_pngs, set_slider
from tests.support.tiny_upscalers import save_rrdbnet

pytestmark = BROWSER_MARKS


@pytest.fixture
def esrgan(live_app) -> Iterator[str]:
    """A tiny 4x RRDBNet dropped into the live app's models/ESRGAN (removed afterwards)."""
    path = save_rrdbnet(Path(live_app["data_dir"], "models", "ESRGAN", "tiny-browser_x4.safetensors"), scale=4)
    try:
        yield path.stem
    finally:
        path.unlink()
        live_app["ctx"].upscalers.refresh()


def first_src(page, selector: str) -> str | None:
    """The ``src`` of the first image under ``selector``, if one is shown (the shared page keeps earlier results)."""
    images = page.locator(selector)
    return images.first.get_attribute("src") if images.count() else None


def expect_new_image(image, src_before: str | None, timeout: float = GENERATE_TIMEOUT_MS) -> None:
    """Wait until ``image`` is shown and is not the one whose ``src`` was ``src_before`` (None: none was)."""
    expect(image).to_be_visible(timeout=timeout)
    if src_before is not None:
        expect(image).not_to_have_attribute("src", src_before, timeout=timeout)


def natural_size(page, locator) -> list[int]:
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=locator.element_handle())
    return locator.evaluate("img => [img.naturalWidth, img.naturalHeight]")


def test_vary_subtle_under_the_txt2img_gallery_shows_a_new_image(module_page, live_app):
    page = module_page
    page.get_by_role("tab", name="txt2img", exact=True).click()
    made = live_app["ctx"].engine.generate(Txt2ImgRequest(prompt="a brass lamp", steps=3, width=64, height=64,
                                                          seed=97531, model="tiny-sd15")).images[0]
    page.locator("#txt2img_prompt textarea").fill("a brass lamp")
    set_slider(page, "Width", 64)
    set_slider(page, "Height", 64)
    set_slider(page, "Sampling steps", 3)
    seed = page.locator("#txt2img_seed input")
    seed.fill("97531")
    seed.press("Enter")
    page.locator("#txt2img_generate").click()
    info_box = page.locator("#txt2img_info textarea")
    expect(info_box).to_have_value(made.infotext, timeout=GENERATE_TIMEOUT_MS)
    first_src = page.locator("#txt2img_gallery img").first.get_attribute("src")

    # The row sits under the gallery, in the same column.
    buttons = page.locator("#txt2img_result_actions")
    expect(buttons.get_by_role("button", name="Vary (subtle)")).to_be_visible()
    assert page.locator("#txt2img_gallery").evaluate(
        "(g, row) => g.parentElement.contains(row) || g.closest('.column').contains(row)",
        buttons.element_handle())

    page.locator("#txt2img_action_vary_subtle").click()
    expect(info_box).to_have_value(re.compile(r"Denoising strength: 0\.5,"), timeout=GENERATE_TIMEOUT_MS)
    varied = parse_infotext(info_box.input_value())
    assert varied["Seed"] != "97531" and varied["Prompt"] == "a brass lamp"
    image = page.locator("#txt2img_gallery img").first
    expect(image).to_be_visible()
    assert image.get_attribute("src") != first_src
    saved = list(Path(live_app["data_dir"], "outputs", "img2img-images").glob(f"*/*-{varied['Seed']}.png"))
    assert len(saved) == 1 and image.get_attribute("src").rsplit("/", 1)[-1] == saved[0].name

    # Reuse seed puts the varied image's seed into the form.
    page.locator("#txt2img_action_reuse_seed").click()
    expect(seed).to_have_value(varied["Seed"])


def test_upscale_action_switches_to_the_upscale_tab_and_runs_2x(module_page, live_app):
    page = module_page
    made = live_app["ctx"].engine.generate(Txt2ImgRequest(prompt="a tin robot", steps=2, width=64, height=64,
                                                          seed=8642, model="tiny-sd15")).images[0]
    page.get_by_role("tab", name="PNG Info", exact=True).click()
    page.locator("#png_info_image input[type=file]").set_input_files(str(made.path))
    expect(page.locator("#png_info_parameters textarea")).to_have_value(made.infotext, timeout=ASSERT_TIMEOUT_MS)
    page.locator("#png_info_send_txt2img").click()
    page.locator("#txt2img_generate").click()
    expect(page.locator("#txt2img_info textarea")).to_have_value(made.infotext, timeout=GENERATE_TIMEOUT_MS)

    gallery_src_before = first_src(page, "#extras_gallery img")
    page.locator("#txt2img_action_upscale").click()
    expect(page.get_by_role("tab", name="Upscale", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("number input for Scale by", exact=True)).to_have_value("2")
    image = page.locator("#extras_gallery img").first
    expect_new_image(image, gallery_src_before)
    assert natural_size(page, image) == [128, 128]


def test_upscale_tab_runs_the_esrgan_model_4x(module_page, live_app, esrgan, tmp_path):
    page = module_page
    source = tmp_path / "small.png"
    Image.radial_gradient("L").resize((48, 32)).convert("RGB").save(source)
    page.get_by_role("tab", name="Upscale", exact=True).click()

    # The model was dropped in after the page loaded: 🔄 lists it, then it is picked by hand.
    page.locator("#extras_refresh_upscalers").click()
    upscaler_1 = page.get_by_role("combobox", name="Upscaler 1")
    upscaler_1.click()
    page.get_by_role("option", name=esrgan, exact=True).click()
    expect(upscaler_1).to_have_value(esrgan)
    source_src_before = first_src(page, "#extras_image img")
    page.locator("#extras_image input[type=file]").set_input_files(str(source))
    expect_new_image(page.locator("#extras_image img"), source_src_before, timeout=ASSERT_TIMEOUT_MS)
    set_slider(page, "Scale by", 4)

    before = saved_pngs(live_app["data_dir"], "extras")
    page.locator("#extras_upscale").click()
    # The gallery may still show the previous test's result: this job's info comes first, then its image.
    expect(page.locator("#extras_info textarea")).to_have_value(re.compile(esrgan), timeout=GENERATE_TIMEOUT_MS)
    new = saved_pngs(live_app["data_dir"], "extras") - before
    assert len(new) == 1, sorted(map(str, new))
    saved = new.pop()
    image = page.locator("#extras_gallery img").first
    expect(image).to_be_visible(timeout=GENERATE_TIMEOUT_MS)
    expect(image).to_have_attribute("src", re.compile(re.escape("/" + saved.name) + "$"))
    assert natural_size(page, image) == [192, 128]
    with Image.open(saved) as png:
        assert png.size == (192, 128)
    assert image.get_attribute("src").rsplit("/", 1)[-1] == saved.name


def test_actions_follow_the_image_clicked_in_the_gallery(module_page, live_app):
    page = module_page
    page.get_by_role("tab", name="txt2img", exact=True).click()
    page.locator("#txt2img_prompt textarea").fill("two pebbles")
    set_slider(page, "Width", 64)
    set_slider(page, "Height", 64)
    set_slider(page, "Sampling steps", 2)
    set_slider(page, "Batch size", 2)
    seed = page.locator("#txt2img_seed input")
    seed.fill("5550")
    seed.press("Enter")
    page.locator("#txt2img_generate").click()
    thumbnails = page.locator("#txt2img_gallery img")
    expect(thumbnails).to_have_count(2, timeout=GENERATE_TIMEOUT_MS)

    thumbnails.nth(1).click()  # the second image: seed 5551
    page.locator("#txt2img_action_send_img2img").click()
    expect(page.get_by_role("tab", name="img2img", exact=True).first).to_have_attribute("aria-selected", "true")
    expect(page.locator("#img2img_seed input")).to_have_value("5551")
    expect(page.locator("#img2img_prompt textarea")).to_have_value("two pebbles")
    expect(page.locator("#img2img_image img")).to_be_visible()
