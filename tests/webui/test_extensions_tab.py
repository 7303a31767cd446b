"""The Extensions tab over HTTP (gradio_client): install from a git repository the test serves on
127.0.0.1, check for updates, update, roll back, enable/disable (config.json), uninstall, and the index
with Install per row. (The gate under --listen is tested on the manager and over the REST API.)"""

from __future__ import annotations

import json

import pytest
from gradio_client.exceptions import AppError

from pipelines.context import AppContext
from tests.support.apps import free_port, make_settings
from tests.support.git_server import EXTENSION_PY, ExtensionRepo, StaticServer
from tests.support.ui_client import Client
from webui.server import serve


def rows(table) -> dict[str, list]:
    return {row[0]: row for row in table["data"]}


def test_install_update_rollback_apply_uninstall_and_the_index(tmp_path):
    repo = ExtensionRepo(tmp_path / "git", "tab-ext")
    with StaticServer(tmp_path / "git" / "served") as server:
        url = server.repo_url(repo)
        index_url = server.put_json("index.json", {"tags": {"tab": "adds a tab"}, "extensions": [
            {"name": "Tab ext", "url": url, "description": "from the test", "tags": ["tab"], "added": "2024-01-01"},
            {"name": "Other", "url": f"{server.url}/other.git", "description": "not served", "added": "2023-01-01"}]})
        ctx = AppContext.build(make_settings(tmp_path / "data", builtin_extensions_dir=tmp_path / "no-builtins"))
        demo, app_url, _ = serve(ctx, host="127.0.0.1", port=free_port(), block=False)
        try:
            client = Client(app_url, verbose=False)
            table, enabled, _pick, message = client.predict(url=url, branch="", folder="",
                                                            api_name="/extensions_install")
            row = rows(table)["tab-ext"]
            assert row[1:3] == ["yes", "installed; loads at the next start"] and row[4:6] == [url, "main"]
            assert enabled["value"] == ["tab-ext"] and message.startswith("Installed **tab-ext**")
            with pytest.raises(AppError, match="already installed"):
                client.predict(url=url, branch="", folder="", api_name="/extensions_install")
            with pytest.raises(AppError, match="remote helpers"):
                client.predict(url="ext::sh -c id", branch="", folder="", api_name="/extensions_install")

            first = row[6]
            repo.commit({"extension.py": EXTENSION_PY + "# v2\n"}, "v2")
            table, *_, message = client.predict(api_name="/extensions_check_updates")
            assert rows(table)["tab-ext"][8] == "1 new commit" and message == "Updates for: tab-ext."
            table, *_ = client.predict(name="tab-ext", api_name="/extensions_update")
            assert rows(table)["tab-ext"][6] != first and rows(table)["tab-ext"][8] == ""
            table, *_ = client.predict(name="tab-ext", api_name="/extensions_rollback")
            assert rows(table)["tab-ext"][6] == first

            table, enabled, _pick, message = client.predict(checked=[], api_name="/extensions_apply")
            assert message == "Saved. Disabled: tab-ext. Restart Atelier to apply."
            assert json.loads((tmp_path / "data" / "config.json").read_text())["disabled_extensions"] == ["tab-ext"]
            assert rows(table)["tab-ext"][1:3] == ["no", "disabled (disabled in the Extensions tab)"]

            table, *_, message = client.predict(name="tab-ext", api_name="/extensions_uninstall")
            assert "tab-ext" not in rows(table) and not (tmp_path / "data" / "extensions" / "tab-ext").exists()

            note, _tags, _hide, listing, _pick = client.predict(
                index_url=index_url, query="", tags=[], hide=[], sort="newest", api_name="/extensions_index_load")
            assert note.startswith(f"2 extensions in the index from {index_url}, fetched just now")
            assert [r[0] for r in listing["data"]] == ["Tab ext", "Other"]
            table, *_, message = client.predict(picked=url, api_name="/extensions_install_from_index")
            assert "tab-ext" in rows(table) and message.startswith("Installed **tab-ext**")
        finally:
            demo.close()

