"""End-to-end: the extra-networks panel in Debian's chromium. Open the panel under the txt2img prompt, click a
LoRA card's i (its training metadata shows), click the card (its script reports the click), see the tag in the
prompt, generate, and find ``Lora hashes`` in the image's infotext. Fixtures in tests/browser/conftest.py;
helpers in tests/support/browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.browser import BROWSER_MARKS, GENERATE_TIMEOUT_MS, set_slider
from tests.support.tiny_loras import save_kohya_lora_for

pytestmark = BROWSER_MARKS


@pytest.fixture
def lora(live_app, model_store) -> Iterator[Path]:
    """A kohya LoRA for tiny-sd15 in the live app's models/Lora (the panel's Refresh rescans), removed after."""
    path = live_app["data_dir"] / "models" / "Lora" / "brushy.safetensors"
    save_kohya_lora_for(model_store / "tiny-sd15", path, seed=3)
    try:
        yield path
    finally:
        path.unlink()
        live_app["ctx"].store.refresh()


def test_clicking_a_lora_card_puts_its_tag_in_the_prompt_and_the_image_uses_it(page, live_app, lora):
    page.locator("#txt2img_prompt textarea").fill("a fox")
    page.locator("#txt2img_extra_networks").get_by_text("Extra networks", exact=True).click()
    page.locator("#txt2img_extra_networks_refresh").click()
    page.locator("#txt2img_extra_networks_tabs").get_by_role("tab", name="LoRA", exact=True).click()
    card = page.locator('#txt2img_extra_networks_lora_cards [data-card="brushy"]')
    card.locator(".card-details").click()  # its "i": the details, not the prompt
    expect(page.locator("#txt2img_extra_networks_details")).to_contain_text("ss_network_module")
    expect(page.locator("#txt2img_prompt textarea")).to_have_value("a fox")
    card.click()
    expect(page.locator("#txt2img_prompt textarea")).to_have_value("a fox <lora:brushy:1>")

    set_slider(page, "Width", 64)
    set_slider(page, "Height", 64)
    set_slider(page, "Sampling steps", 2)
    page.locator("#txt2img_generate").click()
    info = page.locator("#txt2img_info textarea")
    expect(info).to_have_value(re.compile(r'Lora hashes: "brushy: [0-9a-f]{12}"'), timeout=GENERATE_TIMEOUT_MS)
    assert info.input_value().startswith("a fox <lora:brushy:1>\n")

    # The negative prompt had the focus last: the second click goes there (A1111's active prompt).
    page.locator("#txt2img_negative_prompt textarea").click()
    card.click()
    expect(page.locator("#txt2img_negative_prompt textarea")).to_have_value("<lora:brushy:1>")
    expect(page.locator("#txt2img_prompt textarea")).to_have_value("a fox <lora:brushy:1>")
