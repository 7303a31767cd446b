"""End-to-end: A1111's prompt language through the page, and an image made with it made again.

A prompt with emphasis and prompt editing and a negative prompt past one 75-token chunk are typed
(the counters follow), Clip skip and Emphasis are set in the quick settings, the image is generated;
then the quick settings and the prompt are changed, and PNG Info's Send to txt2img must bring everything
back (the quick settings included) so that the second image is the same file content: pixels and infotext.

Emphasis is "No norm": with "Original", the tiny random text encoder's penultimate layer (Clip skip 2)
has a mean near zero, so restoring the mean after weighting blows the embeddings up and the image
comes out black (a real CLIP's hidden states do not average to zero).

Debian's chromium through Playwright, on the session's ``live_app``. Fixtures in tests/browser/conftest.py;
helpers and the skip without chromium in tests/support/browser.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import expect

from tests.support.browser import BROWSER_MARKS, GENERATE_TIMEOUT_MS, saved_pngs, set_slider
from webui.components.token_counter import TokenizerCache, counter_text

pytestmark = BROWSER_MARKS

PROMPT = "a (red:1.4) fox, [cat:dog:0.5]"
NEGATIVE = " ".join(["a"] * 100)  # 100 tokens with the tiny tokenizer: two chunks
STEPS, SEED = 3, 97531


def wait_until(condition, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def set_quick_settings(page, ctx, clip_skip: int, emphasis: str) -> None:
    """Change both quick settings and wait until the server has saved them (the next job reads the options)."""
    set_slider(page, "Clip skip", clip_skip)
    dropdown = page.get_by_role("combobox", name="Emphasis", exact=True)
    dropdown.click()
    page.get_by_role("option", name=emphasis, exact=True).click()
    expect(dropdown).to_have_value(emphasis)
    wanted = {"clip_skip": clip_skip, "emphasis": emphasis}
    wait_until(lambda: ctx.options.prompt_settings() == wanted, f"{wanted} to be saved")


def generate(page, data_dir: Path) -> tuple[Path, str]:
    """Click Generate; the one new PNG and the info box's text once the gallery shows it."""
    before = saved_pngs(data_dir)
    page.locator("#txt2img_generate").click()
    wait_until(lambda: len(saved_pngs(data_dir) - before) == 1, "the saved PNG", GENERATE_TIMEOUT_MS / 1000)
    saved = (saved_pngs(data_dir) - before).pop()
    # The gallery and the info box arrive together; the info of a remake may equal the last one's.
    expect(page.locator("#txt2img_gallery img").first).to_have_attribute("src", re.compile(re.escape(saved.name)))
    return saved, page.locator("#txt2img_info textarea").input_value()


def test_a_prompt_with_emphasis_editing_and_clip_skip_is_made_again_from_png_info(page, live_app):
    ctx, data_dir = live_app["ctx"], live_app["data_dir"]
    tokenizer = TokenizerCache(ctx.selection).current()
    try:
        # The quick settings show the saved options; Clip skip 2 and No norm for this image.
        expect(page.get_by_label("number input for Clip skip", exact=True)).to_have_value("1")
        expect(page.get_by_role("combobox", name="Emphasis", exact=True)).to_have_value("Original")
        set_quick_settings(page, ctx, 2, "No norm")

        set_slider(page, "Width", 64)
        set_slider(page, "Height", 64)
        set_slider(page, "Sampling steps", STEPS)
        seed = page.locator("#txt2img_seed input")
        seed.fill(str(SEED))
        seed.press("Enter")

        # The counters follow the typing: one chunk for the prompt, two for the 100-token negative prompt.
        page.locator("#txt2img_prompt textarea").fill(PROMPT)
        expected = counter_text(PROMPT, tokenizer, steps=STEPS)
        assert expected.endswith("/75") and not expected.startswith(("0/", "?"))
        expect(page.locator("#txt2img_prompt_token_counter")).to_have_text(expected)
        page.locator("#txt2img_negative_prompt textarea").fill(NEGATIVE)
        expect(page.locator("#txt2img_negative_prompt_token_counter")).to_have_text("100/150")

        first, info = generate(page, data_dir)
        assert info.startswith(f"{PROMPT}\nNegative prompt: {NEGATIVE}\n"), info
        assert "Clip skip: 2" in info and "Emphasis: No norm" in info, info
        with Image.open(first) as made:
            assert np.asarray(made).std() > 0, "a blank image proves nothing"

        # Change what must come back: the quick settings and the prompt.
        set_quick_settings(page, ctx, 1, "Original")
        page.locator("#txt2img_prompt textarea").fill("something else")
        expect(page.locator("#txt2img_prompt_token_counter")).to_have_text(counter_text("something else", tokenizer))

        # PNG Info -> Send to txt2img: the prompt, the seed and Clip skip are back.
        page.get_by_role("tab", name="PNG Info", exact=True).click()
        page.locator("#png_info_image input[type=file]").set_input_files(str(first))
        expect(page.locator("#png_info_parameters textarea")).to_have_value(info)
        page.locator("#png_info_send_txt2img").click()
        expect(page.get_by_role("tab", name="txt2img", exact=True)).to_have_attribute("aria-selected", "true")
        expect(page.locator("#txt2img_prompt textarea")).to_have_value(PROMPT)
        expect(page.locator("#txt2img_negative_prompt textarea")).to_have_value(NEGATIVE)
        expect(page.locator("#txt2img_seed input")).to_have_value(str(SEED))
        expect(page.get_by_label("number input for Clip skip", exact=True)).to_have_value("2")
        expect(page.get_by_role("combobox", name="Emphasis", exact=True)).to_have_value("No norm")
        expect(page.locator("#txt2img_prompt_token_counter")).to_have_text(expected)
        wanted = {"clip_skip": 2, "emphasis": "No norm"}
        wait_until(lambda: ctx.options.prompt_settings() == wanted, "the pasted quick settings to be saved")

        # Generate again: the same file content.
        second, again = generate(page, data_dir)
        assert again == info
        with Image.open(second) as new, Image.open(first) as old:
            assert new.info["parameters"] == old.info["parameters"]
            assert np.array_equal(np.asarray(new), np.asarray(old)), "the image was not made again"
    finally:
        ctx.options.update({"CLIP_stop_at_last_layers": 1, "emphasis": "Original"})
