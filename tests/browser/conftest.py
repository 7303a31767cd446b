"""Fixtures for the browser tests: one chromium per module and a fresh, settled page on the session's
``live_app``. Helpers and markers are in tests/support/browser.py."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, live_app, request, tmp_path_factory) -> Iterator:
    """A fresh page on the live app, loaded and settled; on failure a screenshot and the
    browser console are written under pytest's base temp folder
    (``.../browser-artifacts/<test>.png``) and their paths printed."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(ASSERT_TIMEOUT_MS)
    expect.set_options(timeout=ASSERT_TIMEOUT_MS)
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
            # About once per full parallel run on 2 loaded cores, one queued load event's stream stays open past
            # the wait (cause not found; see the issue 12 note). A user would reload the page; so does the test,
            # once, and a second stall fails it.
            # The first paint waits on the same load events, so it gets the same patience (a clean-clone run once
            # took over 15 s to show the Generate button, with the form's refit outputs still pending).
            for attempt in (1, 2):
                page.goto(live_app["url"])
                try:
                    page.locator("#txt2img_generate").wait_for(state="visible", timeout=45_000)
                    wait_for_load_events(page, traffic, timeout_s=45)
                    break
                except (AssertionError, PlaywrightTimeoutError) as stalled:
                    if attempt == 2:
                        raise
                    print(f"\nreloading the page once: {stalled}")
                    traffic = GradioTraffic(page)
        except BaseException:
            keep_artifacts()
            raise
        failed_before = request.session.testsfailed
        yield page
        if request.session.testsfailed > failed_before:  # the test body failed (counted before teardown)
            keep_artifacts()
    finally:
        context.close()
