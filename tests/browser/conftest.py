"""Fixtures for the browser tests: one chromium per module and a loaded, settled page on the session's
``live_app``: ``page``, fresh for each test, or ``module_page``, one page that a module's tests share in file
order (a page load costs 5-15 s of chromium on 2 busy cores). Helpers and markers are in
tests/support/browser.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import (
    ASSERT_TIMEOUT_MS,
    CHROMIUM,
    CHROMIUM_ARGS,
    GradioTraffic,
    wait_for_load_events,
)

FIRST_PAINT_TIMEOUT_MS = 90_000  # a page's Generate button shown; only a broken page takes this long


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class _Artifacts:
    """A page's browser console, and writing it with a screenshot under pytest's base temp folder
    (``.../browser-artifacts/<test>.png``) when a test fails."""

    def __init__(self, page, tmp_path_factory) -> None:
        self.page = page
        self.folder = tmp_path_factory.getbasetemp() / "browser-artifacts"
        self.console: list[str] = []
        page.on("console", lambda msg: self.console.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda exc: self.console.append(f"[pageerror] {exc}"))

    def keep(self, name: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shot = self.folder / f"{name}.png"
        try:
            self.page.screenshot(path=str(shot), full_page=True)
            (self.folder / f"{name}.console.txt").write_text("\n".join(self.console))
            print(f"\nbrowser screenshot: {shot}\nbrowser console: {shot.with_suffix('.console.txt')}")
        except Exception as exc:  # the page may be gone; never hide the real failure
            print(f"\ncould not take a screenshot: {exc}")


@contextmanager
def _loaded_page(browser, url: str, name: str, tmp_path_factory) -> Iterator[tuple]:
    """A page on ``url`` in its own browser context, loaded and settled: ``(page, artifacts)``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(ASSERT_TIMEOUT_MS)
    expect.set_options(timeout=ASSERT_TIMEOUT_MS)
    artifacts = _Artifacts(page, tmp_path_factory)
    traffic = GradioTraffic(page)
    try:
        try:
            # About once per full parallel run on 2 loaded cores, one queued load event's stream stays open past
            # the wait (cause not found; see the issue 12 note). A user would reload the page; so does the test,
            # once, and a second stall fails it.
            # The first paint gets more patience than that wait: a clean-clone run once took over 15 s to show the
            # Generate button, and a run with four workers on 2 cores (load 21) over 45 s.
            for attempt in (1, 2):
                page.goto(url)
                try:
                    page.locator("#txt2img_generate").wait_for(state="visible", timeout=FIRST_PAINT_TIMEOUT_MS)
                    wait_for_load_events(page, traffic, timeout_s=45)
                    break
                except (AssertionError, PlaywrightTimeoutError) as stalled:
                    if attempt == 2:
                        raise
                    print(f"\nreloading the page once: {stalled}")
                    traffic = GradioTraffic(page)
        except BaseException:
            artifacts.keep(name)
            raise
        yield page, artifacts
    finally:
        context.close()


@contextmanager
def _kept_on_failure(request, artifacts: _Artifacts) -> Iterator[None]:
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:  # the test body failed (counted before teardown)
        artifacts.keep(request.node.name)


@pytest.fixture
def page(browser, live_app, request, tmp_path_factory) -> Iterator:
    """A fresh page on the live app, loaded and settled; on failure a screenshot and the
    browser console are written under pytest's base temp folder
    (``.../browser-artifacts/<test>.png``) and their paths printed."""
    with _loaded_page(browser, live_app["url"], request.node.name, tmp_path_factory) as (page, artifacts):
        with _kept_on_failure(request, artifacts):
            yield page


@pytest.fixture(scope="module")
def _module_page(browser, live_app, request, tmp_path_factory) -> Iterator[tuple]:
    with _loaded_page(browser, live_app["url"], request.module.__name__, tmp_path_factory) as loaded:
        yield loaded


@pytest.fixture
def module_page(_module_page, request) -> Iterator:
    """The module's one page on the live app, loaded and settled once and shared by its tests in file order.
    A test finds it as the test before left it: it opens its own tab, sets every input it relies on, and
    waits for its own results (never for what is already on screen). Artifacts on failure as ``page``."""
    page, artifacts = _module_page
    with _kept_on_failure(request, artifacts):
        yield page
