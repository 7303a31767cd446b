"""End-to-end: the txt2img tab's "Hires. fix" accordion driven in Debian's chromium through Playwright.

The fixtures and helpers are the txt2img browser test's (skips the same way without chromium).
"""

from __future__ import annotations

import re

from pipelines.infotext.codec import parse_infotext
from tests.browser import test_txt2img_browser as txt2img_ui

browser, page, pytestmark = txt2img_ui.browser, txt2img_ui.page, txt2img_ui.pytestmark
expect, GENERATE_TIMEOUT_MS = txt2img_ui.expect, txt2img_ui.GENERATE_TIMEOUT_MS


def test_ticking_hires_fix_generates_the_upscaled_image(page, live_app):
    page.locator("#txt2img_prompt textarea").fill("a lighthouse at dusk")
    txt2img_ui.set_slider(page, "Width", 64)
    txt2img_ui.set_slider(page, "Height", 64)
    txt2img_ui.set_slider(page, "Sampling steps", 2)

    # Closed by default; opening it shows the checkbox, unticked.
    enable = page.locator("#txt2img_enable_hr input[type=checkbox]")
    expect(enable).to_be_hidden()
    page.locator("#txt2img_hr").get_by_role("button", name=re.compile("Hires. fix")).first.click()
    expect(enable).to_be_visible()
    expect(enable).not_to_be_checked()
    enable.check()
    expect(page.locator("#txt2img_hr_summary")).to_contain_text("from 64x64 to 128x128")
    txt2img_ui.set_slider(page, "Hires steps", 2)
    txt2img_ui.set_slider(page, "Resize width to", 96)
    expect(page.locator("#txt2img_hr_summary")).to_contain_text("from 64x64 to 96x96")

    page.locator("#txt2img_generate").click()
    image = page.locator("#txt2img_gallery img").first
    expect(image).to_be_visible(timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [96, 96]
    info = parse_infotext(page.locator("#txt2img_info textarea").input_value())
    assert info["Size"] == "64x64" and info["Hires resize"] == "96x0" and info["Hires steps"] == "2"
    assert info["Hires upscaler"] == "Latent" and info["Denoising strength"] == "0.7"
