"""End-to-end in a browser: Imagine makes a 2x2 grid, U2 then V3 on it add their results on top of the feed, and
both results are found in History by their prompt, with their files and modes.

Debian's chromium through Playwright, on the session's ``live_app``. Fixtures in tests/browser/conftest.py;
helpers and the skip without chromium in tests/support/browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from tests.support.browser import BROWSER_MARKS, GENERATE_TIMEOUT_MS, saved_pngs, set_slider

pytestmark = BROWSER_MARKS

PROMPT = "a brass zeppelin over a harbour"


def grids(data_dir: Path) -> set[Path]:
    return set((data_dir / "outputs").glob("*-grids/*/*.png"))


def history_path(page, outputs: Path, previous: Path | None) -> Path:
    """The file of the image just opened in History (its details name it under ``outputs``), once it differs from
    ``previous``."""
    details = page.locator("#history_details")
    expect(details).to_contain_text("Saved ")
    if previous is not None:
        expect(details).not_to_contain_text(previous.relative_to(outputs).as_posix())
    match = re.search(r"(\S+-(?:images|grids)/\S+\.png)", details.inner_text())
    assert match, details.inner_text()
    return outputs / match.group(1)


def test_u2_then_v3_on_a_grid_and_both_results_in_history(page, live_app):
    data_dir: Path = live_app["data_dir"]
    before = {mode: saved_pngs(data_dir, mode) for mode in ("txt2img", "img2img", "extras")}
    grids_before = grids(data_dir)

    # The grid is made at the txt2img tab's settings: small and quick.
    for label, value in (("Sampling steps", 2), ("Width", 64), ("Height", 64)):
        set_slider(page, label, value)
    page.get_by_role("tab", name="Imagine", exact=True).click()
    page.locator("#imagine_prompt textarea").fill(PROMPT)
    page.locator("#imagine_generate").click()
    # One title per entry, newest first (Gradio gives the class to the block and to the prose inside it).
    feed_entries = page.locator(".block.imagine-title")
    expect(page.locator("#imagine_1_U2")).to_be_visible(timeout=GENERATE_TIMEOUT_MS)
    expect(feed_entries).to_have_count(1)
    expect(feed_entries.first).to_contain_text(f"Imagine · {PROMPT}")

    # U2: an upscaled second image on top; the grid stays below it.
    page.locator("#imagine_1_U2").click()
    expect(feed_entries).to_have_count(2, timeout=GENERATE_TIMEOUT_MS)
    expect(feed_entries.first).to_contain_text("U2 · image 2 of entry 1")

    # V3 (subtle, the toggle's default): a new grid of variations of the third image, on top again.
    page.locator("#imagine_1_V3").click()
    expect(feed_entries).to_have_count(3, timeout=GENERATE_TIMEOUT_MS)
    expect(feed_entries.first).to_contain_text("V3 (subtle) · image 3 of entry 1")
    expect(feed_entries.nth(1)).to_contain_text("U2 · image 2 of entry 1")
    expect(feed_entries.nth(2)).to_contain_text(f"Imagine · {PROMPT}")
    expect(page.locator("#imagine_3_V1")).to_be_visible()  # the new grid has its own buttons

    new = {mode: saved_pngs(data_dir, mode) - files for mode, files in before.items()}
    assert [len(new[m]) for m in ("txt2img", "extras", "img2img")] == [4, 1, 4], new

    # History: the prompt finds every file the three jobs saved, the two grids too, newest first.
    made = set().union(*new.values(), grids(data_dir) - grids_before)
    assert len(made) == 11
    page.get_by_role("tab", name="History", exact=True).click()
    expect(page.locator("#history_page_label")).to_contain_text("image(s)")  # the tab's own first page
    search = page.locator("#history_text textarea")
    search.fill("zeppelin harbour")
    search.press("Enter")
    expect(page.locator("#history_page_label")).to_contain_text("11 image(s)")
    thumbnails = page.locator("#history_gallery .thumbnail-item")
    expect(thumbnails).to_have_count(11)
    found = []
    for n in range(11):
        thumbnails.nth(n).click()
        found.append(history_path(page, data_dir / "outputs", previous=found[-1] if found else None))
    assert set(found) == made
    upscaled, = new["extras"]
    assert found.index(upscaled) == 5  # after V3's grid and its four images, before the first grid's
    assert set(found[1:5]) == new["img2img"]

    # Opening U2's result shows its mode and the parameters it was made with.
    thumbnails.nth(5).click()
    expect(page.locator("#history_details")).to_contain_text("extras")
    expect(page.locator("#history_parameters textarea")).to_have_value(re.compile(re.escape(PROMPT)))
