"""The REST API alone (A1111's ``--nowebui``): uvicorn in a background thread, no Gradio.

Kept apart from webui.server (the page) so that serving the API alone never imports Gradio, whose import
is the largest part of the page's start-up (tests/api/test_api_only.py checks this).
"""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

from pipelines.context import AppContext
from pipelines.extension_api import AppStarted
from webui.api import ApiConfig, create_api_app
from webui.guard import guard_middleware

log = logging.getLogger(__name__)


class ApiServer:
    """uvicorn in a background thread, for the API without the UI (``--nowebui``)."""

    def __init__(self, ctx: AppContext, *, host: str, port: int, api: ApiConfig) -> None:
        app = create_api_app(ctx, api, middleware=guard_middleware(host))
        config = uvicorn.Config(app, host=host, port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="atelier-api", daemon=True)
        self.url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/"

    def start(self, timeout: float = 30.0) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the API server could not start on {self.url}")
            time.sleep(0.05)
        return self

    def block_thread(self) -> None:
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            self.close()

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def serve_api(ctx: AppContext, *, host: str = "127.0.0.1", port: int = 7861, api: ApiConfig | None = None,
              block: bool = True) -> ApiServer:
    """Serve only the API (A1111's ``--nowebui``; its default port is 7861)."""
    server = ApiServer(ctx, host=host, port=port, api=api or ApiConfig()).start()
    log.info("Atelier API serving on %ssdapi/v1 (docs: %sdocs)", server.url, server.url)
    ctx.extensions.app_started(AppStarted(server.url, ctx.settings.data_dir))
    if block:
        server.block_thread()
    return server
