"""Helpers shared by the browser tests (tests/browser/): Debian's chromium, the skip and markers every
browser test module carries, and what drives or reads a Gradio page. The fixtures (``browser``, ``page``)
are in tests/browser/conftest.py.

Chromium comes from Debian (``apt-get install chromium``), never from ``playwright install``; without
``/usr/bin/chromium`` (or ``$ATELIER_CHROMIUM``) the browser tests skip, saying why. Playwright is pinned in
requirements-test.txt and imported plainly: a missing package fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

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

# Every browser test module: ``pytestmark = BROWSER_MARKS``.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"chromium not found at {CHROMIUM} (install it with `apt-get install -y chromium`, "
        "or `bash tests/run.sh` as root does it; set ATELIER_CHROMIUM to use another binary)",
    ),
]

GENERATE_TIMEOUT_MS = 60_000  # the first generation also loads the model
# for actions and assertions (5 s by default): the suite runs on 2 busy cores, beside a Ray cluster's start-up
# (tests/cluster), which stalled a click's after-wait past 15 s once
ASSERT_TIMEOUT_MS = 30_000


class GradioTraffic:
    """Counts the page's calls to the Gradio API (the heartbeat stream aside), so a test can
    wait for the page's load events to finish before it touches a component they update."""

    def __init__(self, page) -> None:
        self.started: list[str] = []
        self.in_flight = 0
        self.pending: dict[int, str] = {}  # what is in flight, for the failure message
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
            self.pending[id(request)] = f"{request.method} {request.url} {(request.post_data or '')[:200]}"

    def _on_done(self, request) -> None:
        if self._is_api(request):
            self.in_flight -= 1
            self.pending.pop(id(request), None)

    def calls(self) -> int:
        return sum("/queue/join" in url or "/run/" in url or "/call/" in url for url in self.started)


def wait_for_load_events(page, traffic: GradioTraffic, timeout_s: float = 60.0) -> None:
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
                f"{traffic.calls()}/{expected} calls, {traffic.in_flight} in flight: {list(traffic.pending.values())}"
            )
        page.wait_for_timeout(50)


def set_slider(page, label: str, value: int) -> None:
    """Gradio 6 sliders pair a range input with a number input; typing into the number
    input and pressing Enter commits the value (and moves the range thumb)."""
    number = page.get_by_label(f"number input for {label}", exact=True)
    number.fill(str(value))
    number.press("Enter")
    expect(page.get_by_label(f"range slider for {label}", exact=True)).to_have_value(str(value))


def saved_pngs(data_dir: Path, mode: str = "txt2img") -> set[Path]:
    """The PNGs saved under ``outputs/<mode>-images/<date>/`` (mode: txt2img, img2img, extras)."""
    return set((data_dir / "outputs" / f"{mode}-images").glob("*/*.png"))
