"""--api-auth guards every /sdapi route and the docs; --gradio-auth guards the UI (with --api-auth set, separate
logins, as in A1111; without it the UI's accounts guard the API too: tests/api/test_security.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import API_USER, UI_USER, sdapi_routes

CHEAP_BODIES = {"/sdapi/v1/txt2img": {"steps": 0}, "/sdapi/v1/png-info": {"image": ""}}


def _calls(app) -> list[tuple[str, str]]:
    return sorted({(method, route.path) for route in sdapi_routes(app) for method in route.methods})


def test_every_sdapi_route_needs_the_api_login(api_app):
    calls = _calls(api_app["app"])
    assert len(calls) >= 33
    base = api_app["url"].rstrip("/")
    with httpx.Client(base_url=base, timeout=120) as client:
        for method, path in calls:
            body = CHEAP_BODIES.get(path, {}) if method == "POST" else None
            for auth in (None, (API_USER[0], "wrong"), ("nobody", API_USER[1]), UI_USER):
                denied = client.request(method, path, json=body, auth=auth)
                assert denied.status_code == 401, (method, path, auth, denied.text)
                assert denied.headers["www-authenticate"] == "Basic"
                assert denied.json()["detail"] == "Incorrect username or password"
                assert "x-process-time" in denied.headers
            allowed = client.request(method, path, json=body, auth=API_USER)
            assert allowed.status_code != 401, (method, path, allowed.text)
            assert allowed.status_code < 500 or allowed.status_code == 501, (method, path, allowed.text)


def test_a_malformed_authorization_header_is_a_401_not_a_500(api_app):
    response = httpx.get(api_app["url"] + "sdapi/v1/options", headers={"Authorization": "Basic %%%"}, timeout=60)
    assert response.status_code == 401


def test_gradio_auth_does_not_guard_the_api_and_api_auth_does_not_open_the_ui(api_app):
    url = api_app["url"]
    assert httpx.get(url + "config", timeout=60).status_code == 401  # the UI wants its own login
    assert httpx.get(url + "config", auth=API_USER, timeout=60).status_code == 401
    assert httpx.get(url + "sdapi/v1/sd-models", auth=API_USER, timeout=60).status_code == 200  # no UI login needed
    with httpx.Client(base_url=url, timeout=60) as browser:
        login = browser.post("login", data={"username": UI_USER[0], "password": UI_USER[1]})
        assert login.status_code == 200
        assert browser.get("config").status_code == 200
        assert browser.get("sdapi/v1/sd-models").status_code == 401  # a UI session is not an API login


@pytest.mark.parametrize("path", ["docs", "redoc", "openapi.json"])
def test_docs_need_the_api_login(api_app, path):
    """Unlike A1111 (public docs), the docs are behind the API's login: they map the whole API for a caller."""
    assert httpx.get(api_app["url"] + path, timeout=60).status_code == 401
    assert httpx.get(api_app["url"] + path, auth=UI_USER, timeout=60).status_code == 401
    assert httpx.get(api_app["url"] + path, auth=API_USER, timeout=60).status_code == 200
