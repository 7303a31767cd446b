"""Build the A1111-compatible API: one APIRouter under /sdapi/v1, added to Gradio's app or served alone.

- Every /sdapi route depends on HTTP Basic auth when the API has a login: ``--api-auth``, else the
  ``--gradio-auth`` accounts (launch.build_api_config; 401 ``Incorrect username or password`` +
  ``WWW-Authenticate: Basic``). A Gradio session cookie is not an API login.
- Errors and ``X-Process-Time`` come from :class:`~webui.api.errors.ApiRoute`.
- ``/docs`` (Swagger UI), ``/redoc`` and ``/openapi.json`` describe the API routes only, behind the same login
  (the browser asks for it once; Swagger's own fetch of the schema reuses it).
- Atelier's own routes (not in A1111) are under ``/atelier/v1``: extensions, the image history.
- :func:`api_routes` gathers everything in one router, so the Gradio app can be created with the
  routes already in it (``app_kwargs["routes"]``): nothing is added after the server accepts connections.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.exceptions import HTTPException

from pipelines.context import AppContext
from pipelines.version import __version__
from webui.api.errors import ApiRoute
from webui.api.routes_cluster import add_cluster_routes
from webui.api.routes_extensions import add_extension_routes, build_atelier_router
from webui.api.routes_generation import add_generation_routes
from webui.api.routes_history import add_history_routes
from webui.api.routes_imagine import add_imagine_routes
from webui.api.routes_models import add_model_routes
from webui.api.routes_presets import add_preset_routes
from webui.api.routes_variation import add_variation_routes
from webui.api.scripts import add_script_routes, mount_extension_routes

API_PREFIX = "/sdapi/v1"
TITLE = "Atelier API (AUTOMATIC1111-compatible)"
# FastAPI's own docs routes would be open to all; ours (api_routes) carry the API's login
NO_DOCS_KWARGS = {"docs_url": None, "redoc_url": None, "openapi_url": None}


@dataclass(frozen=True)
class ApiConfig:
    """How the API is served: its logins (``--api-auth``) and the flags shown by /cmd-flags."""

    auth: tuple[tuple[str, str], ...] = ()
    cmd_flags: Mapping[str, Any] = field(default_factory=dict)


def basic_auth(accounts: tuple[tuple[str, str], ...]) -> Callable[..., None]:
    """A FastAPI dependency accepting any of ``accounts`` (compared in constant time)."""
    security = HTTPBasic(auto_error=False, description="--api-auth user:password")
    known = tuple((user.encode(), password.encode()) for user, password in accounts)

    def check_api_auth(credentials: HTTPBasicCredentials | None = Depends(security)) -> None:
        if credentials is not None:
            user, password = credentials.username.encode(), credentials.password.encode()
            matched = False
            for known_user, known_password in known:  # no early exit: timing says nothing about which
                matched |= secrets.compare_digest(user, known_user) & secrets.compare_digest(password, known_password)
            if matched:
                return
        raise HTTPException(401, "Incorrect username or password", headers={"WWW-Authenticate": "Basic"})

    return check_api_auth


def build_router(ctx: AppContext, config: ApiConfig) -> APIRouter:
    """Every /sdapi/v1 route, bound to ``ctx`` (no module state: two apps never share anything)."""
    dependencies = [Depends(basic_auth(config.auth))] if config.auth else []
    router = APIRouter(prefix=API_PREFIX, route_class=ApiRoute, dependencies=dependencies, tags=["sdapi"])
    add_generation_routes(router, ctx, ctx.options)
    add_model_routes(router, ctx, ctx.options, config.cmd_flags)
    add_extension_routes(router, ctx)
    add_script_routes(router, ctx)
    return router


def api_routes(ctx: AppContext, config: ApiConfig) -> APIRouter:
    """Every route the API adds to an app: /sdapi/v1, /atelier/v1 (Atelier's own), /extensions/<name>/...
    and the docs, all behind the API's login when it has one."""
    router = build_router(ctx, config)
    dependencies = list(router.dependencies)
    atelier = build_atelier_router(ctx, dependencies)
    add_history_routes(atelier, ctx)
    add_imagine_routes(atelier, ctx)
    add_variation_routes(atelier, ctx)
    add_preset_routes(atelier, ctx)
    add_cluster_routes(atelier, ctx)
    everything = APIRouter()
    everything.include_router(router)
    everything.include_router(atelier)
    mount_extension_routes(everything, ctx, dependencies)
    add_docs_routes(everything, [*router.routes, *atelier.routes], dependencies)
    return everything


def add_docs_routes(target: APIRouter, described: list[Any], dependencies: list[Any]) -> None:
    """/openapi.json, /docs and /redoc for the ``described`` routes (built on first request)."""
    schema: dict[str, Any] = {}
    docs = APIRouter(dependencies=dependencies, include_in_schema=False)

    @docs.get("/openapi.json")
    def openapi() -> JSONResponse:
        if not schema:
            schema.update(get_openapi(title=TITLE, version=__version__, routes=described,
                                      description="AUTOMATIC1111 webui API, served by Atelier's core."))
        return JSONResponse(schema)

    @docs.get("/docs")
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{TITLE} - docs")

    @docs.get("/redoc")
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{TITLE} - ReDoc")

    target.include_router(docs)


def mount_api(app: FastAPI, ctx: AppContext, config: ApiConfig) -> APIRouter:
    """Add the API to a FastAPI app created with :data:`NO_DOCS_KWARGS` (before it serves)."""
    routes = api_routes(ctx, config)
    app.include_router(routes)
    return routes


def create_api_app(ctx: AppContext, config: ApiConfig, middleware: list[Any] | None = None) -> FastAPI:
    """A FastAPI app with only the API (``--nowebui``), wrapped in ``middleware`` (webui.guard's)."""
    app = FastAPI(title=TITLE, version=__version__, middleware=middleware, **NO_DOCS_KWARGS)
    mount_api(app, ctx, config)
    return app
