"""End-to-end: the img2img tab and its Inpaint sub-tab, driven in Debian's chromium through Playwright.

Both tests share one page (``module_page``). Fixtures in tests/browser/conftest.py; helpers and the skip
without chromium in tests/support/browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import expect

from tests.support.browser import BROWSER_MARKS, GENERATE_TIMEOUT_MS, saved_pngs

pytestmark = BROWSER_MARKS

WIDTH, HEIGHT = 96, 80  # the source picture's size, which the upload puts into Width/Height
# The Inpaint editor's upload event reaches the server only after Gradio has drawn the editor's layers into
# PNGs and uploaded them, twice; with software WebGL on two busy cores that has taken up to 30 s.
EDITOR_UPLOAD_TIMEOUT_MS = 60_000


def source_picture(folder: Path, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """A picture with structure (two ramps and a dark square), so changes show."""
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (height, 1)), np.full((height, width), 120, np.uint8),
                       np.tile(ramp[::-1], (height, 1))], -1)
    pixels[height // 4:height // 2, width // 3:width // 2] = 10
    path = folder / f"source-{width}x{height}.png"
    Image.fromarray(pixels).save(path)
    return path


def open_img2img(page) -> None:
    page.get_by_role("tab", name="img2img", exact=True).first.click()
    expect(page.locator("#img2img_generate")).to_be_visible()


def slider(page, elem_id: str, label: str):
    """The range input of the slider ``#elem_id`` (txt2img has sliders with the same labels)."""
    return page.locator(f"#{elem_id}").get_by_label(f"range slider for {label}", exact=True)


def set_slider(page, elem_id: str, label: str, value: int) -> None:
    """Type into the slider's number input and press Enter, as tests/support/browser.py's set_slider does."""
    number = page.locator(f"#{elem_id}").get_by_label(f"number input for {label}", exact=True)
    number.fill(str(value))
    number.press("Enter")
    expect(slider(page, elem_id, label)).to_have_value(str(value))


def set_seed_and_steps(page, seed: int, steps: int) -> None:
    set_slider(page, "img2img_steps", "Sampling steps", steps)
    box = page.locator("#img2img_seed input")
    box.fill(str(seed))
    box.press("Enter")
    expect(box).to_have_value(str(seed))


def shown_info(page) -> str:
    """The generation info on show (the shared page may still show an earlier test's)."""
    return page.locator("#img2img_info textarea").input_value()


def wait_for_result(page, info_before: str) -> str:
    """The generation info once it is not ``info_before`` any more and the gallery's first image once the
    browser has loaded it; returns that info."""
    info = page.locator("#img2img_info textarea")
    expect(info).not_to_have_value(info_before, timeout=GENERATE_TIMEOUT_MS)
    expect(info).to_have_value(re.compile(r"Steps: .*Seed: "))
    image = page.locator("#img2img_gallery img").first
    expect(image).to_be_visible(timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    return info.input_value()


def test_upload_sets_the_size_and_generate_saves_an_img2img_png(module_page, live_app, tmp_path):
    page = module_page
    data_dir: Path = live_app["data_dir"]
    open_img2img(page)
    page.locator("#img2img_image input[type=file]").set_input_files(str(source_picture(tmp_path)))
    expect(slider(page, "img2img_width", "Width")).to_have_value(str(WIDTH), timeout=20_000)
    expect(slider(page, "img2img_height", "Height")).to_have_value(str(HEIGHT))
    page.locator("#img2img_prompt textarea").fill("a teapot")
    set_seed_and_steps(page, 2468, 3)

    before, info_before = saved_pngs(data_dir, "img2img"), shown_info(page)
    page.locator("#img2img_generate").click()
    info = wait_for_result(page, info_before)
    assert f"Size: {WIDTH}x{HEIGHT}," in info and "Seed: 2468," in info and "Denoising strength: 0.75" in info

    new = saved_pngs(data_dir, "img2img") - before
    assert len(new) == 1, sorted(map(str, new))
    with Image.open(new.pop()) as png:
        assert png.size == (WIDTH, HEIGHT) and png.info["parameters"] == info


def draw_stroke(page, editor) -> None:
    """Drag the brush (Gradio's default radius: 25 image pixels) left to right above the image's
    centre. The 256x192 picture is drawn centred and scaled to fit the canvas (about 2x in this
    viewport), so in image pixels the stroke runs roughly from x 75-90 to 117-120 at y 68-77."""
    box = editor.locator("canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 100, cy - 50)
    page.mouse.down()
    page.mouse.move(cx - 20, cy - 50, steps=3)  # each move redraws the canvas: seconds apiece in headless chromium
    page.mouse.up()


def test_inpaint_repaints_the_brush_stroke_and_keeps_the_rest(module_page, live_app, tmp_path):
    page = module_page
    data_dir: Path = live_app["data_dir"]
    source = source_picture(tmp_path, 256, 192)
    open_img2img(page)
    page.get_by_role("tab", name="Inpaint", exact=True).click()
    editor = page.locator("#inpaint_editor")
    # Gradio 6.31's editor wipes an image dropped before its canvas is ready (its "no value" reset runs
    # when the canvas gets ready); its toolbar shows only from then on, and a user drops after seeing it.
    expect(editor.get_by_role("button", name="Upload", exact=True)).to_be_visible()
    editor.locator("input[type=file]").set_input_files(str(source))
    expect(slider(page, "img2img_width", "Width")).to_have_value("256", timeout=EDITOR_UPLOAD_TIMEOUT_MS)
    brush = editor.get_by_role("button", name="Brush", exact=True)
    expect(brush).to_have_class(re.compile(r"\bhighlight\b"))  # the brush is the tool after an upload
    draw_stroke(page, editor)
    set_slider(page, "inpaint_mask_blur", "Mask blur", 0)
    set_seed_and_steps(page, 1357, 3)

    before, info_before = saved_pngs(data_dir, "img2img"), shown_info(page)
    page.locator("#img2img_generate").click()
    info = wait_for_result(page, info_before)
    assert "Mask blur: 0" in info and "Seed: 1357," in info and "Size: 256x192," in info, info
    new = saved_pngs(data_dir, "img2img") - before
    assert len(new) == 1, sorted(map(str, new))
    with Image.open(new.pop()) as png:
        result = np.asarray(png.convert("RGB"), dtype=np.int16)
    changed = np.abs(result - np.asarray(Image.open(source).convert("RGB"), dtype=np.int16)).max(axis=-1) > 0
    assert changed[70:76, 95:110].mean() > 0.5, "the stroke's pixels were not repainted"
    ys, xs = np.nonzero(changed)
    assert ys.min() >= 35 and ys.max() <= 110 and xs.min() >= 40 and xs.max() <= 155, (
        f"pixels changed far from the stroke: rows {ys.min()}-{ys.max()}, columns {xs.min()}-{xs.max()}")
