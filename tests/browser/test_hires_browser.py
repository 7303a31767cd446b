"""End-to-end: the txt2img tab's "Hires. fix" accordion driven in Debian's chromium through Playwright.

Fixtures in tests/browser/conftest.py; helpers and the skip without chromium in tests/support/browser.py.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from pipelines.infotext.codec import parse_infotext
from tests.support.browser import BROWSER_MARKS, GENERATE_TIMEOUT_MS, set_slider

pytestmark = BROWSER_MARKS


def test_ticking_hires_fix_generates_the_upscaled_image(page, live_app):
    page.locator("#txt2img_prompt textarea").fill("a lighthouse at dusk")
    set_slider(page, "Width", 64)
    set_slider(page, "Height", 64)
    set_slider(page, "Sampling steps", 2)

    # Closed by default; opening it shows the checkbox, unticked.
    enable = page.locator("#txt2img_enable_hr input[type=checkbox]")
    expect(enable).to_be_hidden()
    page.locator("#txt2img_hr").get_by_role("button", name=re.compile("Hires. fix")).first.click()
    expect(enable).to_be_visible()
    expect(enable).not_to_be_checked()
    enable.check()
    expect(page.locator("#txt2img_hr_summary")).to_contain_text("from 64x64 to 128x128")
    set_slider(page, "Hires steps", 2)
    set_slider(page, "Resize width to", 96)
    expect(page.locator("#txt2img_hr_summary")).to_contain_text("from 64x64 to 96x96")

    page.locator("#txt2img_generate").click()
    image = page.locator("#txt2img_gallery img").first
    expect(image).to_be_visible(timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [96, 96]
    info = parse_infotext(page.locator("#txt2img_info textarea").input_value())
    assert info["Size"] == "64x64" and info["Hires resize"] == "96x0" and info["Hires steps"] == "2"
    assert info["Hires upscaler"] == "Latent" and info["Denoising strength"] == "0.7"
