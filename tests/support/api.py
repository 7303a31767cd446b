"""Constants and helpers shared by the API tests: the logins and flags ``api_app`` serves with, a quick
txt2img body, and the app's /sdapi routes. (Fixtures live in tests/api/conftest.py.)"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.routing import APIRoute

API_USER = ("api-user", "api-s3cret")
UI_USER = ("ui-user", "ui-s3cret")
FLAGS = {"api": True, "api_auth": "api-user:api-s3cret", "gradio_auth": "ui-user:ui-s3cret", "port": 0}
FAST = {"prompt": "a teapot", "steps": 3, "width": 64, "height": 64, "seed": 11, "sampler_name": "Euler a"}


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
