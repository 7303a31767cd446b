"""The extension manager on real git: clones over HTTP from repositories the test serves on 127.0.0.1,
update / check / rollback / uninstall, enable state in config.json, the gate, requirements under
constraints, and the index served the same way then read offline from its cache."""

from __future__ import annotations

import json
import time
from importlib import metadata

import pytest

from pipelines.extension_manager.errors import (
    ExtensionAccessDenied,
    ExtensionError,
    IndexUnavailable,
    RequirementsConflict,
)
from pipelines.extension_manager.index import age_text
from pipelines.extension_manager.manager import ExtensionManager
from pipelines.options import OptionsStore
from pipelines.selection import CheckpointSelection
from tests.support.apps import make_settings
from tests.support.git_server import EXTENSION_PY, ExtensionRepo, StaticServer, git


class NoCheckpoints(CheckpointSelection):
    """The options store wants a checkpoint source; these tests never load one."""

    def __init__(self) -> None:
        pass

    @property
    def current(self) -> str:
        return ""

    def record(self):
        return None


def manager_for(data_dir, **flags) -> ExtensionManager:
    """A manager on ``data_dir/extensions``; its built-in folder holds one built-in name (``xyz_plot``)."""
    builtin = data_dir / "builtin"
    (builtin / "xyz_plot").mkdir(parents=True, exist_ok=True)
    (builtin / "xyz_plot" / "extension.py").write_text(EXTENSION_PY)
    settings = make_settings(data_dir, builtin_extensions_dir=builtin, **flags)
    return ExtensionManager(settings, OptionsStore(settings, NoCheckpoints()))


def installed(manager: ExtensionManager) -> list[str]:
    return [r.name for r in manager.records() if not r.builtin]


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.exists() else []


def test_install_update_rollback_enable_uninstall_over_http(tmp_path):
    repo = ExtensionRepo(tmp_path / "git", "sd-tiny-ext")
    first = repo.commit({"README.md": "v1\n"}, "readme", push=True)
    with StaticServer(repo.bare.parent) as server:
        manager = manager_for(tmp_path / "data")
        url = server.repo_url(repo)
        updates = []
        record = manager.install(url, on_progress=updates.append)
        assert (record.name, record.remote, record.branch, record.commit_hash) == ("sd-tiny-ext", url, "main", first)
        assert abs(record.commit_date - time.time()) < 600 and record.version == first[:8]
        assert record.enabled and not record.builtin and record.previous_commit == ""
        assert (record.folder / "extension.py").read_text() == EXTENSION_PY
        assert updates and updates[-1].step == updates[-1].total == 100
        with pytest.raises(ExtensionError, match="already installed"):
            manager.install(url)
        with pytest.raises(ExtensionError, match="git clone failed"):
            manager.install(f"{server.url}/missing.git")
        assert leftovers(manager.folder) == [] and not (manager.folder / "missing").exists()

        [check] = manager.check_updates()
        assert (check.name, check.behind, check.text) == ("sd-tiny-ext", 0, "up to date")
        second = repo.commit({"extension.py": EXTENSION_PY + "# v2\n"}, "second version")
        assert manager.check_updates(["sd-tiny-ext"])[0].behind == 1
        updated = manager.update("sd-tiny-ext")
        assert (updated.commit_hash, updated.previous_commit) == (second, first)
        assert (updated.folder / "extension.py").read_text().endswith("# v2\n")
        assert manager.check_updates()[0].behind == 0
        rolled = manager.rollback("sd-tiny-ext")
        assert (rolled.commit_hash, rolled.previous_commit) == (first, "")
        repo.commit({"requirements.txt": "torch==1.0\n"}, "wants an old torch")
        with pytest.raises(RequirementsConflict, match="torch==1.0"):  # checked before the checkout moves
            manager.update("sd-tiny-ext")
        assert manager.record("sd-tiny-ext").commit_hash == first
        with pytest.raises(ExtensionError, match="no earlier commit"):
            manager.rollback("sd-tiny-ext")

        manager.enable("sd-tiny-ext", False)
        config = json.loads((tmp_path / "data" / "config.json").read_text())
        assert config["disabled_extensions"] == ["sd-tiny-ext"]
        assert manager.record("sd-tiny-ext").disabled_reason == "disabled in the Extensions tab"
        manager.set_enabled(["sd-tiny-ext"])  # exactly these: the built-in one is switched off
        assert manager.record("sd-tiny-ext").enabled and not manager.record("xyz_plot").enabled
        manager.enable("xyz_plot")
        assert json.loads((tmp_path / "data" / "config.json").read_text())["disabled_extensions"] == []

        # A branch and a folder name of one's own; a local path is fine while serving localhost only.
        git("checkout", "-q", "-b", "dev", first, cwd=repo.work)
        dev = repo.commit({"dev.txt": "dev\n"}, "on dev", push=False)
        other = manager.install(str(repo.work), branch="dev", name="from-disk")
        assert (other.name, other.branch, other.commit_hash, other.remote) == ("from-disk", "dev", dev,
                                                                               str(repo.work.resolve()))

        manager.uninstall("sd-tiny-ext")
        assert not (manager.folder / "sd-tiny-ext").exists()
        assert [(r.name, r.builtin, r.has_entry) for r in manager.records()] == [("from-disk", False, True),
                                                                                  ("xyz_plot", True, True)]
        with pytest.raises(ExtensionError, match="ships with Atelier; disable it"):
            manager.uninstall("xyz_plot")


def test_the_gate_refuses_every_change_under_listen(tmp_path):
    repo = ExtensionRepo(tmp_path / "git", "gated")
    local = manager_for(tmp_path / "data")
    local.install(str(repo.bare))
    exposed = manager_for(tmp_path / "data", listen=True)
    with StaticServer(repo.bare.parent) as server:
        with pytest.raises(ExtensionAccessDenied, match=r"\(--listen\).*--enable-insecure-extension-access"):
            exposed.install(server.repo_url(repo), name="other")
    for action in (lambda: exposed.update("gated"), lambda: exposed.rollback("gated"),
                   lambda: exposed.uninstall("gated"), lambda: exposed.enable("gated", False)):
        with pytest.raises(ExtensionAccessDenied):
            action()
    assert installed(exposed) == ["gated"] and exposed.record("gated").enabled
    assert exposed.check_updates()[0].behind == 0  # reading is allowed


def test_requirements_are_checked_before_anything_is_installed(tmp_path, monkeypatch):
    bad = ExtensionRepo(tmp_path / "git", "wants-old-torch", {"extension.py": EXTENSION_PY,
                                                             "requirements.txt": "einops\ntorch==1.0\n"})
    fine = ExtensionRepo(tmp_path / "git", "fine", {"extension.py": EXTENSION_PY, "requirements.txt": "einops\n"})
    manager = manager_for(tmp_path / "data")
    with pytest.raises(RequirementsConflict, match=r"torch==1.0: Atelier runs torch .* and it would be changed"):
        manager.install(str(bad.bare))
    assert installed(manager) == [] and leftovers(manager.folder) == []

    monkeypatch.setenv("PIP_NO_INDEX", "1")  # already installed: pip needs no index; never the network
    assert manager.install(str(fine.bare)).name == "fine"
    constraints = manager.constraints_file.read_text()
    assert f"torch=={metadata.version('torch')}\n" in constraints and "einops==" in constraints


def test_the_index_is_served_then_read_offline_from_its_cache(tmp_path):
    repo = ExtensionRepo(tmp_path / "git", "sd-listed")
    index = {"tags": {"script": "a script", "tab": "a tab"}, "extensions": [
        {"name": "Listed", "url": "https://example.com/a/sd-listed.git", "description": "installed one",
         "tags": ["script"], "added": "2023-01-02", "created_at": "2022-12-01T00:00:00Z", "stars": 5},
        {"name": "Popular", "url": "https://example.com/b/popular", "description": "many stars",
         "tags": ["tab", "script"], "added": "2022-05-01", "stars": 900},
        {"name": "Broken entry without url"}]}
    manager = manager_for(tmp_path / "data")
    manager.install(str(repo.bare))
    with StaticServer(tmp_path / "web") as server:
        url = server.put_json("index.json", index)
        fetched = manager.index(url=url)
    assert not fetched.from_cache and fetched.tags["tab"] == "a tab" and len(fetched.entries) == 2
    newest = manager.available(fetched)
    assert [(a.entry.name, a.installed) for a in newest] == [("Listed", True), ("Popular", False)]
    assert [a.entry.name for a in manager.available(fetched, sort="stars")] == ["Popular", "Listed"]
    assert [a.entry.name for a in manager.available(fetched, tags=["tab"])] == ["Popular"]
    assert [a.entry.name for a in manager.available(fetched, hide_tags=["tab"], query="INSTALLED")] == ["Listed"]

    offline = manager.index(url=url)  # the server is gone
    assert offline.from_cache and "could not fetch" in offline.error and len(offline.entries) == 2
    assert age_text(time.time() - offline.fetched_at) == "just now" and age_text(7300) == "2 hours ago"
    with pytest.raises(IndexUnavailable, match="no copy"):
        manager_for(tmp_path / "other").index(url=url)
    with pytest.raises(ExtensionAccessDenied, match="Loading an extension index from another URL"):
        manager_for(tmp_path / "data", listen=True).index(url=url)  # only the configured index, remotely
