"""Serve the Gradio page (and, later, the REST API) for one app context."""

from __future__ import annotations

import logging

from pipelines.context import AppContext
from webui.app import build_blocks

log = logging.getLogger(__name__)


def serve(ctx: AppContext, *, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
          auth: list[tuple[str, str]] | None = None, block: bool = True):
    """Start the server; returns (app, local_url, share_url) when ``block`` is False."""
    demo = build_blocks(ctx)
    app, local_url, share_url = demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=auth,
        allowed_paths=[str(ctx.settings.outputs_dir)],
        prevent_thread_lock=True,
        show_error=True,
        quiet=False,
    )
    log.info("Atelier serving on %s%s", local_url, f" and {share_url}" if share_url else "")
    if block:
        demo.block_thread()
    return demo, local_url, share_url
