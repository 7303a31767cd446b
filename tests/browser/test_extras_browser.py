"""End-to-end: the Upscale tab and a result action, driven in Debian's chromium through Playwright.

The fixtures and helpers are the txt2img browser test's (skips the same way without chromium).
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.infotext import parse_infotext
from pipelines.requests import Txt2ImgRequest
from tests.browser import test_txt2img_browser as txt2img_ui

browser, page, pytestmark = txt2img_ui.browser, txt2img_ui.page, txt2img_ui.pytestmark
expect, GENERATE_TIMEOUT_MS = txt2img_ui.expect, txt2img_ui.GENERATE_TIMEOUT_MS


def test_vary_subtle_under_the_txt2img_gallery_shows_a_new_image(page, live_app):
    made = live_app["ctx"].engine.generate(Txt2ImgRequest(prompt="a brass lamp", steps=3, width=64, height=64,
                                                          seed=97531, model="tiny-sd15")).images[0]
    page.locator("#txt2img_prompt textarea").fill("a brass lamp")
    txt2img_ui.set_slider(page, "Width", 64)
    txt2img_ui.set_slider(page, "Height", 64)
    txt2img_ui.set_slider(page, "Sampling steps", 3)
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
