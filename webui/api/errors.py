"""Errors as A1111's API reports them, and the route class that applies that to every /sdapi route.

Body of every error: ``{"error": <exception class>, "detail": ..., "body": ..., "errors": str}``.
Client mistakes get a 4xx naming the field; only Atelier's own bugs give a 500. Gradio's app is
already running when the API routes are added, and Starlette refuses new middleware on a started
app, so error handling and the ``X-Process-Time`` header live in the route class instead.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from pipelines.errors import (
    AtelierError,
    DamagedModelError,
    DiskFullError,
    ExtensionError,
    JobCancelledError,
    ModelNotFoundError,
    ModelUnavailableError,
    OutOfMemoryError,
    QueueFullError,
    ReplicaLostError,
    UnsafeFormatError,
    UnsupportedModelError,
    ValidationError,
)

log = logging.getLogger(__name__)
MAX_ECHOED_BODY = 64 * 1024  # a failed request's body is echoed back only when it is small


class ApiError(Exception):
    """An error with an explicit status, for cases the core has no exception for."""

    def __init__(self, status_code: int, detail: str, *, error: str | None = None, errors: str | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.error = error or type(self).__name__
        self.errors = errors or detail


@contextmanager
def naming_model_field(field: str | None) -> Iterator[None]:
    """A model error (not found, unsupported, damaged, pickled) raised inside names ``field``, the request field
    that asked for the model (None: raised as it is). The other models a job uses name their own fields."""
    try:
        yield
    except (ModelNotFoundError, UnsupportedModelError, DamagedModelError, UnsafeFormatError) as exc:
        if field is None:
            raise
        raise type(exc)(f"{field}: {exc}") from exc


def not_implemented(feature: str) -> ApiError:
    """501 for A1111 endpoints whose mode Atelier does not have yet."""
    return ApiError(501, f"{feature} is not available yet in Atelier", error="NotImplemented",
                    errors=f"{feature} arrives in a later Atelier milestone; txt2img and img2img are available now")


_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (ValidationError, 422),
    (ExtensionError, 500),  # an extension's bug: the server's fault, named in the detail
    (ModelNotFoundError, 404),
    (UnsupportedModelError, 422),
    (DamagedModelError, 422),  # the file named is cut short or not safetensors: download it again
    (UnsafeFormatError, 403),
    (ModelUnavailableError, 503),
    (DiskFullError, 507),  # Insufficient Storage: the server's disk, not the request, is at fault
    (OutOfMemoryError, 503),  # the device had no room for the job, even retried in a lower-memory mode
    (QueueFullError, 503),  # with Retry-After: the device queue's estimate
    (ReplicaLostError, 503),  # the cluster replica running the job died: send it again (another replica takes it)
    (JobCancelledError, 409),  # its owner interrupted it (or closed the page) before it started
    (AtelierError, 400),
)


def _field_name(loc: Any) -> str:
    parts = [str(p) for p in loc if p != "body"] if isinstance(loc, list | tuple) else [str(loc)]
    return ".".join(parts) or "body"


def _small(body: Any) -> Any:
    try:
        size = len(json.dumps(jsonable_encoder(body)))
    except (TypeError, ValueError):
        return ""
    return body if size <= MAX_ECHOED_BODY else f"(request body of {size} characters not echoed)"


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as text: JSON has no such numbers, and a client may have sent them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def error_response(exc: Exception) -> JSONResponse:
    """The A1111-shaped JSON response for ``exc``."""
    headers: dict[str, str] | None = None
    body: Any = ""
    if isinstance(exc, RequestValidationError):
        status, detail = 422, jsonable_encoder(exc.errors())
        errors = "; ".join(f"{_field_name(e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        body = _small(exc.body)
    elif isinstance(exc, ApiError):
        status, detail, errors = exc.status_code, exc.detail, exc.errors
    elif isinstance(exc, HTTPException):
        status, detail, errors = exc.status_code, exc.detail, f"{exc.status_code}: {exc.detail}"
        headers = dict(exc.headers or {})
    elif isinstance(exc, AtelierError):
        status = next(code for cls, code in _STATUS if isinstance(exc, cls))
        detail = errors = str(exc)
        if isinstance(exc, QueueFullError):
            headers = {"Retry-After": str(exc.retry_after_s)}
    else:
        log.exception("API internal error", exc_info=exc)
        status, detail = 500, f"Internal error ({type(exc).__name__}); the details are in the server log"
        errors = str(exc)
    name = exc.error if isinstance(exc, ApiError) else type(exc).__name__
    content = {"error": name, "detail": detail, "body": body, "errors": errors}
    return JSONResponse(status_code=status, content=_json_safe(jsonable_encoder(content)), headers=headers)


class ApiRoute(APIRoute):
    """An APIRoute whose errors follow A1111's shape and whose responses carry ``X-Process-Time``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def timed_handler(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except Exception as exc:
                response = error_response(exc)
            response.headers["X-Process-Time"] = f"{time.perf_counter() - started:.4f}"
            return response

        return timed_handler
