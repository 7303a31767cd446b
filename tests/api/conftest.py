"""One Atelier server for the API tests: the Gradio UI (with --gradio-auth) and the API (with
--api-auth) on the same port, on tiny real models."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pipelines.context import AppContext
from tests.support.api import API_USER, FLAGS, UI_USER
from tests.support.apps import free_port, install_models, make_settings
from webui.api import ApiConfig


@pytest.fixture(scope="session")
def api_app(tmp_path_factory, model_store) -> Iterator[dict]:
    """The served app: ``url``, ``ctx``, ``data_dir``, ``app`` (Gradio's FastAPI app with the API added)."""
    from webui.server import serve

    data_dir = tmp_path_factory.mktemp("api-data")
    install_models(model_store, data_dir, ["tiny-sd15", "tiny-sd15-b"])
    ctx = AppContext.build(make_settings(data_dir, initial_model="tiny-sd15"))
    demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), auth=[UI_USER], block=False,
                         api=ApiConfig(auth=(API_USER,), cmd_flags=FLAGS),
                         login_failures=10_000)  # test_auth tries ~100 wrong logins; tests/api/test_security throttles
    try:
        yield {"url": url, "ctx": ctx, "data_dir": data_dir, "app": demo.server_app}
    finally:
        demo.close()


@pytest.fixture(scope="session")
def api(api_app) -> Iterator[httpx.Client]:
    """An HTTP client for /sdapi/v1 with the API's credentials."""
    with httpx.Client(base_url=api_app["url"] + "sdapi/v1", auth=API_USER, timeout=120) as client:
        yield client

