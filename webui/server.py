"""Serve the Gradio page and, with ``api``, the A1111-compatible REST API beside it (the API alone, without
Gradio: webui.api_server).

With the UI, the API's routes go into the FastAPI app ``demo.launch()`` creates, through its documented
``app_kwargs`` (FastAPI's ``routes`` and ``middleware``), so they are there before the server accepts its
first connection: that app is what ``--share`` tunnels to and what ``prevent_thread_lock`` keeps
serving, so the API is reachable wherever the page is. Gradio has no route under /sdapi, so ours are the
ones matched (tests/api checks this). Gradio's ``auth`` guards its own routes; the API has its own login
(``ApiConfig.auth``: ``--api-auth``, else the ``--gradio-auth`` accounts). Both servers are wrapped in
webui.guard's middleware (Host check on loopback, failed-login throttle). With the UI, the app's lifespan
cleans Gradio's temporary folder on a schedule (webui.temp_sweeper). Gradio's file route serves only the
outputs folder (``allowed_paths``), the app's own temporary folder and Gradio's assets; it resolves links
before it decides, so a link in the outputs pointing elsewhere is refused (tests/api/test_security.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from pipelines.context import AppContext
from pipelines.extension_api import AppStarted
from webui.api import ApiConfig
from webui.api.app import NO_DOCS_KWARGS, api_routes
from webui.api.scripts import mount_extension_routes
from webui.app import build_blocks
from webui.guard import LOGIN_FAILURES_PER_MINUTE, guard_middleware
from webui.temp_sweeper import sweeper_lifespan

log = logging.getLogger(__name__)


def serve(ctx: AppContext, *, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
          auth: list[tuple[str, str]] | None = None, block: bool = True, api: ApiConfig | None = None,
          restart: Callable[[], None] | None = None, login_failures: int = LOGIN_FAILURES_PER_MINUTE):
    """Start the server; returns (demo, local_url, share_url) when ``block`` is False. ``restart`` replaces the
    process with a fresh one (launch.py's; the Extensions tab's "Apply and restart UI" calls it).
    ``login_failures``: refused logins per client address and minute before it gets 429s."""
    demo = build_blocks(ctx, restart=restart)
    routes = api_routes(ctx, api) if api is not None else APIRouter()
    if api is None:
        mount_extension_routes(routes, ctx)  # with the API, api_routes adds them behind its login
    _, local_url, share_url = launch_checked(
        demo,
        server_name=host,
        server_port=port,
        share=share,
        auth=auth,
        allowed_paths=[str(ctx.settings.outputs_dir)],
        max_file_size=ctx.settings.max_upload_bytes,  # larger uploads are refused before they are stored
        prevent_thread_lock=True,
        show_error=True,
        quiet=False,
        app_kwargs={**NO_DOCS_KWARGS, "routes": list(routes.routes),
                    "middleware": guard_middleware(host, share=share, login_failures=login_failures),
                    "lifespan": sweeper_lifespan(ctx.settings.temp_max_age_s, ctx.settings.temp_sweep_every_s)},
    )
    if api is not None:
        log.info("A1111-compatible API on %ssdapi/v1 (docs: %sdocs)%s", local_url, local_url,
                 " behind a login" if api.auth else "")
    log.info("Atelier serving on %s%s", local_url, f" and {share_url}" if share_url else "")
    ctx.extensions.app_started(AppStarted(local_url, ctx.settings.data_dir))
    if block:
        demo.block_thread()
    return demo, local_url, share_url


STARTUP_CHECK_FAILED = "localhost is not accessible"  # Gradio's error when its start-up check times out


def launch_checked(demo: Any, *, attempts: int = 3, **launch_kwargs: Any) -> tuple[Any, str, str | None]:
    """``demo.launch(**launch_kwargs)``, started again when only Gradio's start-up check failed.

    Gradio asks the new server for its page once, with a 3 s limit, and gives up ("When localhost is not
    accessible, a shareable link must be created") when that times out, which on a busy machine is only
    slowness: rendering the page's config takes 0.2-0.7 s here when idle. A real refusal fails every try.
    """
    for attempt in range(1, attempts + 1):
        try:
            return demo.launch(**launch_kwargs)
        except ValueError as exc:
            if STARTUP_CHECK_FAILED not in str(exc) or attempt == attempts:
                raise
            log.warning("the page did not answer Gradio's start-up check in time (a busy machine?); "
                        "starting again (%d of %d)", attempt + 1, attempts)
            demo.close()
    raise AssertionError("unreachable: the last attempt returns or raises")
