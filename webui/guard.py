"""Two ASGI middlewares that guard whichever app Atelier serves (the Gradio page with the API, or the API alone).

- :class:`HostGuard`: bound to loopback, answer only requests addressed to loopback (``Host`` of
  127.0.0.1, localhost or [::1], any port). A web page on another site can point its own name at
  127.0.0.1 (DNS rebinding) and so reach the server from the user's browser; its requests carry the
  foreign name in ``Host`` and get a 403. Not enforced when the server is bound to a network address
  (``--listen``, ``--server-name``) or tunnelled (``--share``), where the name is the user's to choose.
- :class:`LoginThrottle`: per client address, at most ``max_failures`` refused logins (Gradio's
  ``/login`` form, or a request whose ``Authorization`` header the API refuses) within ``window``
  seconds; past that, every login attempt from that address is a 429 with ``Retry-After`` until the
  oldest failure leaves the window. Requests without credentials are not login attempts.

Neither echoes the request (no header, body or credential appears in a response or a log line).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.middleware import Middleware

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
LOGIN_PATHS = frozenset({"/login", "/login/"})
LOGIN_FAILURES_PER_MINUTE = 5


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:7860`` -> ``::1``, ``localhost:80`` -> ``localhost``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _refuse(scope: Scope, send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    if scope["type"] == "websocket":  # closing before accept is an HTTP 403 from the server
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(key.encode(), value.encode()) for key, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class HostGuard:
    """Refuse (403) any request whose ``Host`` names something other than this machine's loopback."""

    def __init__(self, app: ASGIApp, bound: str = "127.0.0.1") -> None:
        self.app = app
        self.allowed = LOOPBACK_NAMES | {host_name(bound)}  # e.g. --server-name 127.0.0.2

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            header = _header(scope, b"host")
            if header is not None and host_name(header) not in self.allowed:
                log.warning("refused a request addressed to a foreign host (DNS rebinding?)")
                await _refuse(scope, send, 403, "This server answers only requests addressed to localhost.")
                return
        await self.app(scope, receive, send)


class LoginThrottle:
    """Count refused logins per client address; past ``max_failures`` in ``window`` s, answer 429."""

    def __init__(self, app: ASGIApp, max_failures: int = LOGIN_FAILURES_PER_MINUTE, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        stamps = self.failures.setdefault(client, deque())
        while stamps and stamps[0] <= self.clock() - self.window:
            stamps.popleft()
        if not stamps:
            del self.failures[client]  # the table holds only addresses that failed within the window
            return deque()
        return stamps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        form_login = scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in LOGIN_PATHS
        attempt = form_login or (scope["type"] == "http" and _header(scope, b"authorization") is not None)
        if not attempt:
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "?"
        stamps = self._recent(client)
        if len(stamps) >= self.max_failures:
            wait = max(1, math.ceil(stamps[0] + self.window - self.clock()))
            await _refuse(scope, send, 429, f"Too many failed logins; try again in {wait} s.",
                          {"retry-after": str(wait)})
            return
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if status and (status[0] == 401 or (form_login and status[0] == 400)):  # Gradio's form: 400
            stamps = self.failures.setdefault(client, deque())
            stamps.append(self.clock())
            if len(stamps) == self.max_failures:  # one line per lockout, not per attempt
                log.warning("%d failed logins from %s within %d s: its logins get 429 for a while",
                            self.max_failures, client, self.window)
            if len(self.failures) > 10_000:  # many addresses: forget those whose failures have all expired
                for stale in [key for key, kept in self.failures.items() if kept[-1] <= self.clock() - self.window]:
                    del self.failures[stale]


def guard_middleware(host: str, *, share: bool = False,
                     login_failures: int = LOGIN_FAILURES_PER_MINUTE) -> list[Middleware]:
    """The middleware for a server bound to ``host``: the Host check on loopback (outermost), the login throttle."""
    middleware = [Middleware(HostGuard, bound=host)] if is_loopback(host) and not share else []
    return [*middleware, Middleware(LoginThrottle, max_failures=login_failures)]
