"""gradio_client's ``Client`` as the UI tests use it: quiet, and with a 120 s HTTP timeout.

gradio_client posts each event (``/queue/join``) with httpx's default 5 s timeout. On a 2-core CI
machine running three test workers beside a Ray cluster's start-up (load 11), the live app's answer
to that post has taken longer, and the test failed on the transport, not on what it checks. A browser
waits far longer than 5 s; so do these tests. The event's stream of updates keeps gradio's own
heartbeat, so 120 s between two reads still means a hung server.
"""

from __future__ import annotations

from typing import Any

import gradio_client

HTTP_TIMEOUT_S = 120.0


class Client(gradio_client.Client):
    """``gradio_client.Client`` with ``verbose=False`` and :data:`HTTP_TIMEOUT_S` unless told otherwise."""

    def __init__(self, src: str, *args: Any, httpx_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("verbose", False)
        super().__init__(src, *args, httpx_kwargs={"timeout": HTTP_TIMEOUT_S, **(httpx_kwargs or {})}, **kwargs)
