"""Install from URL in a real browser: the URL of a git repository the test serves on 127.0.0.1 is typed
into the Extensions tab, Install clones it, and the result and the Installed table show it.

Debian's chromium through Playwright, on the session's ``live_app`` (fixtures in tests/browser/conftest.py).
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.browser import BROWSER_MARKS
from tests.support.git_server import ExtensionRepo, StaticServer

pytestmark = BROWSER_MARKS


def test_install_from_url_clones_and_lists_the_extension(page, live_app, tmp_path):
    repo = ExtensionRepo(tmp_path / "git", "browser-ext")
    with StaticServer(repo.bare.parent) as server:
        page.get_by_role("tab", name="Extensions", exact=True).click()
        page.get_by_role("tab", name="Install from URL", exact=True).click()
        page.locator("#extensions_url textarea, #extensions_url input").first.fill(server.repo_url(repo))
        page.locator("#extensions_install").click()
        result = page.locator("#extensions_install_result")
        expect(result).to_contain_text(re.compile(r"Installed browser-ext \([0-9a-f]{8} on main\)"), timeout=30_000)
    assert (live_app["data_dir"] / "extensions" / "browser-ext" / "extension.py").is_file()
    page.get_by_role("tab", name="Installed", exact=True).click()
    expect(page.locator("#extensions_installed")).to_contain_text("installed; loads at the next start")
    expect(page.locator("#extensions_enabled")).to_contain_text("browser-ext")
