"""Extensions over HTTP: A1111's /sdapi/v1/extensions from real git checkouts, and Atelier's
/atelier/v1/extensions routes (install from a repository the test serves on 127.0.0.1, enable,
uninstall, 4xx naming why), refused with 403 when the server is reachable beyond localhost."""

from __future__ import annotations

import httpx

from pipelines.context import AppContext
from tests.support.apps import free_port, make_settings
from tests.support.git_server import EXTENSION_PY, ExtensionRepo, StaticServer
from webui.api import ApiConfig
from webui.api_server import serve_api


def api_server(data_dir, **flags):
    ctx = AppContext.build(make_settings(data_dir, builtin_extensions_dir=data_dir / "no-builtins", **flags))
    return serve_api(ctx, host="127.0.0.1", port=free_port(), api=ApiConfig(), block=False)


def test_install_list_enable_uninstall_over_the_api(tmp_path):
    repo = ExtensionRepo(tmp_path / "git", "api-ext")
    greedy = ExtensionRepo(tmp_path / "git", "greedy", {"extension.py": EXTENSION_PY,
                                                        "requirements.txt": "numpy<1\n"})
    server = api_server(tmp_path / "data")
    try:
        with StaticServer(repo.bare.parent) as git_http, httpx.Client(base_url=server.url, timeout=60) as http:
            url = git_http.repo_url(repo)
            installed = http.post("/atelier/v1/extensions/install", json={"url": url})
            assert installed.status_code == 200, installed.text
            item = installed.json()
            assert (item["name"], item["remote"], item["branch"], item["status"]) == ("api-ext", url, "main",
                                                                                     "not loaded")
            [a1111] = http.get("/sdapi/v1/extensions").json()
            assert a1111 == {"name": "api-ext", "remote": url, "branch": "main", "commit_hash": item["commit_hash"],
                             "version": item["commit_hash"][:8], "commit_date": item["commit_date"], "enabled": True}

            bad = http.post("/atelier/v1/extensions/install", json={"url": "ext::sh -c id"})
            assert bad.status_code == 422 and bad.json()["detail"].startswith("url: git remote helpers")
            conflict = http.post("/atelier/v1/extensions/install", json={"url": git_http.repo_url(greedy)})
            assert conflict.status_code == 409 and "numpy<1: Atelier runs numpy" in conflict.json()["detail"]
            assert http.post("/atelier/v1/extensions/check-updates", json={}).json() == [
                {"name": "api-ext", "behind": 0, "error": None}]

            disabled = http.post("/atelier/v1/extensions/api-ext/enable", json={"enabled": False}).json()
            assert not disabled["enabled"] and disabled["disabled_reason"] == "disabled in the Extensions tab"
            assert http.get("/sdapi/v1/extensions").json()[0]["enabled"] is False
            assert http.delete("/atelier/v1/extensions/api-ext").json() == {}
            gone = http.delete("/atelier/v1/extensions/api-ext")
            assert gone.status_code == 404 and gone.json()["error"] == "ExtensionNotFound"
            assert http.get("/sdapi/v1/extensions").json() == []
    finally:
        server.close()


def test_the_api_refuses_changes_with_403_under_listen(tmp_path):
    repo = ExtensionRepo(tmp_path / "git", "kept")
    local = AppContext.build(make_settings(tmp_path / "data")).extension_manager
    local.install(str(repo.bare))
    assert {(r.name, r.builtin) for r in local.records()} >= {("kept", False), ("xyz_plot", True)}
    server = api_server(tmp_path / "data", share=True)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for method, path, body in (("POST", "/atelier/v1/extensions/install", {"url": "https://example.com/x"}),
                                       ("POST", "/atelier/v1/extensions/kept/enable", {"enabled": False}),
                                       ("POST", "/atelier/v1/extensions/kept/update", None),
                                       ("DELETE", "/atelier/v1/extensions/kept", None)):
                answer = http.request(method, path, json=body)
                assert answer.status_code == 403, (path, answer.text)
                assert answer.json()["error"] == "ExtensionAccessDenied"
                assert "(--share)" in answer.json()["detail"] and "--enable-insecure-extension-access" in \
                    answer.json()["detail"]
            assert [e["name"] for e in http.get("/sdapi/v1/extensions").json()] == ["kept"]
    finally:
        server.close()
