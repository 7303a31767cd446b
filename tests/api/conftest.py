"""One Atelier server for the API tests: the Gradio UI (with --gradio-auth) and the API (with
--api-auth) on the same port, on tiny real models."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from pipelines.context import AppContext
from tests.conftest import free_port, install_models, make_settings
from webui.api import ApiConfig

API_USER = ("api-user", "api-s3cret")
UI_USER = ("ui-user", "ui-s3cret")
FLAGS = {"api": True, "api_auth": "api-user:api-s3cret", "gradio_auth": "ui-user:ui-s3cret", "port": 0}
FAST = {"prompt": "a teapot", "steps": 3, "width": 64, "height": 64, "seed": 11, "sampler_name": "Euler a"}


@pytest.fixture(scope="session")
def api_app(tmp_path_factory, model_store) -> Iterator[dict]:
    """The served app: ``url``, ``ctx``, ``data_dir``, ``app`` (Gradio's FastAPI app with the API added)."""
    from webui.server import serve

    data_dir = tmp_path_factory.mktemp("api-data")
    install_models(model_store, data_dir, ["tiny-sd15", "tiny-sd15-b"])
    ctx = AppContext.build(make_settings(data_dir, initial_model="tiny-sd15"))
    demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), auth=[UI_USER], block=False,
                         api=ApiConfig(auth=(API_USER,), cmd_flags=FLAGS))
    try:
        yield {"url": url, "ctx": ctx, "data_dir": data_dir, "app": demo.server_app}
    finally:
        demo.close()


@pytest.fixture(scope="session")
def api(api_app) -> Iterator[httpx.Client]:
    """An HTTP client for /sdapi/v1 with the API's credentials."""
    with httpx.Client(base_url=api_app["url"] + "sdapi/v1", auth=API_USER, timeout=120) as client:
        yield client


def flatten(routes: Iterable) -> list[APIRoute]:
    """Every APIRoute under ``routes``: FastAPI 0.165 keeps an included router as one entry of
    ``app.routes`` (holding ``original_router``) instead of copying its routes in."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out.extend(flatten(route.original_router.routes))
    return out


def sdapi_routes(app: FastAPI) -> list[APIRoute]:
    return [route for route in flatten(app.routes) if route.path.startswith("/sdapi/")]
