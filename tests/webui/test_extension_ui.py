"""What extensions add to the page, on a server with the fixture extensions (no model needed): their tab, their
settings in the Settings tab (saved to config.json, read back by the extension), their routes, app_started."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.context import AppContext
from tests.support.apps import make_settings, served_ui
from tests.support.ui_client import Client

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "extensions"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict]:

    data_dir = tmp_path_factory.mktemp("ext-ui")
    ctx = AppContext.build(make_settings(data_dir, extensions_dir=FIXTURES))
    with served_ui(ctx) as url:
        yield {"url": url, "data_dir": data_dir}


def test_extension_tab_and_settings_are_on_the_page(served):
    config = httpx.get(served["url"] + "config", timeout=60).json()
    props = [c.get("props", {}) for c in config["components"]]
    assert "Recorder" in [p.get("label") for p in props]  # the tab
    assert any(p.get("elem_id") == "recorder_tab_text" for p in props)  # built by the extension's build()
    greeting = next(p for p in props if p.get("label") == "Recorder greeting")
    assert greeting["value"] == "hello"
    assert ("app_started", served["url"]) in sys.modules["atelier_extensions.recorder"].EVENTS


def test_saved_extension_setting_reaches_the_extension(served):
    Client(served["url"], verbose=False).predict(recorder_greeting="bonjour", api_name="/save_extension_options")
    assert json.loads((served["data_dir"] / "config.json").read_text())["recorder_greeting"] == "bonjour"
    events = httpx.get(served["url"] + "extensions/recorder/events", timeout=60)
    assert events.status_code == 200 and events.json()["greeting"] == "bonjour"
