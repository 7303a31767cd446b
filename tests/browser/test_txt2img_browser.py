"""End-to-end: the txt2img page driven in Debian's chromium through Playwright.

These tests use the session's ``live_app`` (the real Gradio app on tiny models) and a
real browser, so they catch what the Python-level UI tests cannot: the page's markup,
the Svelte components wiring values to the backend, files served back to the browser.

Chromium comes from Debian (``apt-get install chromium``), never from ``playwright
install``; without ``/usr/bin/chromium`` (or ``$ATELIER_CHROMIUM``) the tests skip.
On failure a screenshot and the browser console are written under pytest's base
temp folder (``.../browser-artifacts/<test>.png``) and the path is printed.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = Path(os.environ.get("ATELIER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"chromium not found at {CHROMIUM} (install it with `apt-get install -y chromium`, "
        "or `bash tests/run.sh` as root does it; set ATELIER_CHROMIUM to use another binary)",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-test.txt)")
expect = sync_api.expect

# Small and quick: a 64x64, 3-step image on the tiny model takes well under a second.
WIDTH, HEIGHT, STEPS, SEED = 64, 64, 3, 1234
PROMPT = "a watercolor fox in a misty forest"
GENERATE_TIMEOUT_MS = 60_000  # the first generation also loads the model


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class GradioTraffic:
    """Counts the page's calls to the Gradio API (the heartbeat stream aside), so a test can
    wait for the page's load events to finish before it touches a component they update."""

    def __init__(self, page) -> None:
        self.started: list[str] = []
        self.in_flight = 0
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_done)
        page.on("requestfailed", self._on_done)

    @staticmethod
    def _is_api(request) -> bool:
        return (
            "/gradio_api/" in request.url
            and "/heartbeat/" not in request.url
            and not request.url.endswith((".js", ".css"))
        )

    def _on_request(self, request) -> None:
        if self._is_api(request):
            self.started.append(request.url)
            self.in_flight += 1

    def _on_done(self, request) -> None:
        if self._is_api(request):
            self.in_flight -= 1

    def calls(self) -> int:
        return sum("/queue/join" in url or "/run/" in url or "/call/" in url for url in self.started)


def wait_for_load_events(page, traffic: GradioTraffic, timeout_s: float = 30.0) -> None:
    """``demo.load`` handlers (the checkpoint bar re-reads the shared selection) update
    components after the page shows; typing into one before they finish would be undone.
    Playwright's "networkidle" never comes (Gradio keeps a heartbeat stream open), so count
    the load events in the page's config and wait for their calls to be made and answered."""
    expected = page.evaluate(
        """() => (window.gradio_config?.dependencies ?? []).filter(
               d => (d.targets ?? []).some(t => t[1] === "load")).length"""
    )
    deadline = time.monotonic() + timeout_s
    while traffic.calls() < expected or traffic.in_flight > 0:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"page load events did not finish in {timeout_s:g} s: "
                f"{traffic.calls()}/{expected} calls, {traffic.in_flight} in flight"
            )
        page.wait_for_timeout(50)


@pytest.fixture
def page(browser, live_app, request, tmp_path_factory) -> Iterator:
    """A fresh page on the live app, loaded and settled; on failure a screenshot and the
    browser console are kept."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)  # assertions too (5 s by default): the suite runs on 2 busy cores
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"[{msg.type}] {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"[pageerror] {exc}"))
    traffic = GradioTraffic(page)

    def keep_artifacts() -> None:
        folder = tmp_path_factory.getbasetemp() / "browser-artifacts"
        folder.mkdir(parents=True, exist_ok=True)
        shot = folder / f"{request.node.name}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            (folder / f"{request.node.name}.console.txt").write_text("\n".join(console))
            print(f"\nbrowser screenshot: {shot}\nbrowser console: {shot.with_suffix('.console.txt')}")
        except Exception as exc:  # the page may be gone; never hide the real failure
            print(f"\ncould not take a screenshot: {exc}")

    try:
        try:
            page.goto(live_app["url"])
            page.locator("#txt2img_generate").wait_for(state="visible")
            wait_for_load_events(page, traffic)
        except BaseException:
            keep_artifacts()
            raise
        failed_before = request.session.testsfailed
        yield page
        if request.session.testsfailed > failed_before:  # the test body failed (counted before teardown)
            keep_artifacts()
    finally:
        context.close()


def set_slider(page, label: str, value: int) -> None:
    """Gradio 6 sliders pair a range input with a number input; typing into the number
    input and pressing Enter commits the value (and moves the range thumb)."""
    number = page.get_by_label(f"number input for {label}", exact=True)
    number.fill(str(value))
    number.press("Enter")
    expect(page.get_by_label(f"range slider for {label}", exact=True)).to_have_value(str(value))


def saved_pngs(data_dir: Path) -> set[Path]:
    return set((data_dir / "outputs" / "txt2img-images").glob("*/*.png"))


def test_generate_shows_image_info_and_saves_png(page, live_app):
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


def test_unknown_checkpoint_shows_readable_error(page, live_app):
    data_dir: Path = live_app["data_dir"]
    before = saved_pngs(data_dir)

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
    expect(page.locator("#txt2img_gallery img")).to_have_count(0)
    assert saved_pngs(data_dir) == before


def test_a_fresh_page_shows_the_shared_checkpoint_and_its_status(browser, live_app):
    selection = live_app["ctx"].selection
    selection.select("tiny-sd15-b")  # chosen elsewhere (another tab, the API)
    context = browser.new_context()
    try:
        page = context.new_page()
        traffic = GradioTraffic(page)
        page.goto(live_app["url"])
        page.locator("#txt2img_generate").wait_for(state="visible")
        wait_for_load_events(page, traffic)
        checkpoint = page.get_by_role("combobox", name="Stable Diffusion checkpoint")
        expect(checkpoint).to_have_value(re.compile(r"^tiny-sd15-b( \[[0-9a-f]{10}\])?$"))
        expect(page.locator("#model_status")).to_contain_text("tiny-sd15-b [")
        expect(page.locator("#model_status")).to_contain_text("PyTorch SDPA")
    finally:
        context.close()
        selection.select("tiny-sd15")
