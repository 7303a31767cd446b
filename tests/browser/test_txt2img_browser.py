"""End-to-end: the txt2img page driven in Debian's chromium through Playwright.

These tests use the session's ``live_app`` (the real Gradio app on tiny models) and a
real browser, so they catch what the Python-level UI tests cannot: the page's markup,
the Svelte components wiring values to the backend, files served back to the browser.
The first two tests share one page (``module_page``), in this order; the third opens its own.
The fixtures are in tests/browser/conftest.py, the helpers and the skip without chromium
in tests/support/browser.py.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.support.browser import (
    BROWSER_MARKS,
    GENERATE_TIMEOUT_MS,
    saved_pngs,
    set_slider,
)

pytestmark = BROWSER_MARKS

# Small and quick: a 64x64, 3-step image on the tiny model takes well under a second.
WIDTH, HEIGHT, STEPS, SEED = 64, 64, 3, 1234
PROMPT = "a watercolor fox in a misty forest"


def test_generate_shows_image_info_and_saves_png(module_page, live_app):
    page = module_page
    data_dir: Path = live_app["data_dir"]

    # The page: title, tabs, checkpoint bar.
    expect(page).to_have_title("Atelier")
    for tab in ("txt2img", "Models", "Settings"):
        expect(page.get_by_role("tab", name=tab, exact=True)).to_be_visible()
    checkpoint = page.get_by_role("combobox", name="Stable Diffusion checkpoint")
    expect(checkpoint).to_have_value(re.compile(r"^tiny-sd15( \[[0-9a-f]{10}\])?$"))

    # The form.
    page.locator("#txt2img_prompt textarea").fill(PROMPT)
    set_slider(page, "Width", WIDTH)
    set_slider(page, "Height", HEIGHT)
    set_slider(page, "Sampling steps", STEPS)
    seed = page.locator("#txt2img_seed input")
    seed.fill(str(SEED))
    seed.press("Enter")
    expect(seed).to_have_value(str(SEED))

    before = saved_pngs(data_dir)
    day_before = dt.date.today()
    page.locator("#txt2img_generate").click()

    # The result: an image in the gallery, actually loaded by the browser.
    image = page.locator("#txt2img_gallery img").first
    expect(image).to_be_visible(timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [WIDTH, HEIGHT]

    info_box = page.locator("#txt2img_info textarea")
    expect(info_box).to_have_value(re.compile(r"Steps: .*Seed: "))
    info = info_box.input_value()
    assert info.startswith(PROMPT + "\n"), info
    for part in (f"Steps: {STEPS},", f"Seed: {SEED},", f"Size: {WIDTH}x{HEIGHT},", "Model: tiny-sd15,"):
        assert part in info, f"{part!r} missing from the generation info {info!r}"

    # The saved file: outputs/txt2img-images/<date>/NNNNN-SEED.png, carrying the same infotext.
    new = saved_pngs(data_dir) - before
    assert len(new) == 1, f"expected one new PNG under outputs/txt2img-images, got {sorted(map(str, new))}"
    saved = new.pop()
    assert saved.parent.name in {day_before.isoformat(), dt.date.today().isoformat()}
    assert re.fullmatch(rf"\d{{5}}-{SEED}\.png", saved.name), saved.name
    with Image.open(saved) as png:
        assert png.format == "PNG" and png.size == (WIDTH, HEIGHT)
        assert png.info["parameters"] == info

    # What the browser got is that file (same name, same infotext).
    src = image.get_attribute("src")
    assert src and src.rsplit("/", 1)[-1] == saved.name, src
    served = page.request.get(src)
    assert served.ok, served.status
    with Image.open(io.BytesIO(served.body())) as png:
        assert png.info.get("parameters") == info


def test_unknown_checkpoint_shows_readable_error(module_page, live_app):
    page = module_page
    data_dir: Path = live_app["data_dir"]
    before = saved_pngs(data_dir)
    page.get_by_role("tab", name="txt2img", exact=True).click()
    gallery = page.locator("#txt2img_gallery img")
    shown_before = [gallery.nth(i).get_attribute("src") for i in range(gallery.count())]  # the previous test's

    checkpoint = page.get_by_role("combobox", name="Stable Diffusion checkpoint")
    checkpoint.fill("no-such-model")
    checkpoint.press("Enter")  # a custom value: selecting it already tries to load it
    expect(checkpoint).to_have_value("no-such-model")
    page.locator("#txt2img_prompt textarea").fill(PROMPT)
    set_slider(page, "Width", WIDTH)
    set_slider(page, "Height", HEIGHT)
    set_slider(page, "Sampling steps", 1)
    page.locator("#txt2img_generate").click()

    toast = page.get_by_test_id("toast-body").filter(has_text="no model named")
    expect(toast.first).to_be_visible(timeout=GENERATE_TIMEOUT_MS)
    message = toast.first.inner_text()
    assert "'no-such-model'" in message, message
    assert "Stable-diffusion" in message, message  # tells the user where to put models

    # Readable: the core's message, not a Python traceback, anywhere on the page.
    body = page.locator("body").inner_text()
    for leak in ("Traceback", 'File "', "ModelNotFoundError", "site-packages"):
        assert leak not in body, f"{leak!r} shown in the page:\n{body}"
    expect(gallery).to_have_count(len(shown_before))  # no new image: the gallery keeps what it showed
    assert [gallery.nth(i).get_attribute("src") for i in range(gallery.count())] == shown_before
    assert saved_pngs(data_dir) == before


@pytest.fixture
def chosen_elsewhere(live_app) -> Iterator[None]:
    """tiny-sd15-b selected before the page loads (from another tab, the API); tiny-sd15 again afterwards."""
    selection = live_app["ctx"].selection
    selection.select("tiny-sd15-b")
    try:
        yield
    finally:
        selection.select("tiny-sd15")


def test_a_fresh_page_shows_the_shared_checkpoint_and_its_status(chosen_elsewhere, page):
    # ``page`` is loaded after the selection changed (fixtures are set up in this order), with its settled load events
    checkpoint = page.get_by_role("combobox", name="Stable Diffusion checkpoint")
    expect(checkpoint).to_have_value(re.compile(r"^tiny-sd15-b( \[[0-9a-f]{10}\])?$"))
    expect(page.locator("#model_status")).to_contain_text("tiny-sd15-b [")
    expect(page.locator("#model_status")).to_contain_text("PyTorch SDPA")
