"""Build the A1111-compatible API: one APIRouter under /sdapi/v1, added to Gradio's app or served alone.

- Every /sdapi route depends on HTTP Basic auth when ``--api-auth`` is set (401
  ``Incorrect username or password`` + ``WWW-Authenticate: Basic``). Gradio's ``--gradio-auth``
  guards Gradio's own routes only (its login check is a per-route dependency, not middleware), so
  the API and the UI keep separate logins, as in A1111.
- Errors and ``X-Process-Time`` come from :class:`~webui.api.errors.ApiRoute`.
- ``/docs`` (Swagger UI) and ``/openapi.json`` describe the API routes only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.exceptions import HTTPException

from pipelines.context import AppContext
from pipelines.version import __version__
from webui.api.errors import ApiRoute
from webui.api.routes_extensions import add_extension_routes, build_atelier_router
from webui.api.routes_generation import add_generation_routes
from webui.api.routes_models import add_model_routes
from webui.api.scripts import add_script_routes, mount_extension_routes

API_PREFIX = "/sdapi/v1"
TITLE = "Atelier API (AUTOMATIC1111-compatible)"
DOCS_KWARGS = {"docs_url": "/docs", "redoc_url": "/redoc"}


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


def mount_api(app: FastAPI, ctx: AppContext, config: ApiConfig) -> APIRouter:
    """Add the API to a FastAPI app (Gradio's, already serving, or our own) and point its docs at it."""
    router = build_router(ctx, config)
    app.include_router(router)
    atelier = build_atelier_router(ctx, list(router.dependencies))  # /atelier/v1: Atelier's own, same login
    app.include_router(atelier)
    mount_extension_routes(app, ctx, list(router.dependencies))  # /extensions/<name>/..., same login
    schema: dict[str, Any] = {}

    def api_openapi() -> dict[str, Any]:
        if not schema:
            schema.update(get_openapi(title=TITLE, version=__version__, routes=[*router.routes, *atelier.routes],
                                      description="AUTOMATIC1111 webui API, served by Atelier's core."))
        return schema

    app.openapi_schema = None
    app.openapi = api_openapi  # FastAPI's documented hook; Gradio's own clients use /gradio_api/info
    return router


def create_api_app(ctx: AppContext, config: ApiConfig) -> FastAPI:
    """A FastAPI app with only the API (``--nowebui``)."""
    app = FastAPI(title=TITLE, version=__version__, **DOCS_KWARGS)
    mount_api(app, ctx, config)
    return app
