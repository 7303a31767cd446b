"""Who a request comes from, as the owner of the jobs it starts (pipelines/jobs/owner.py).

A page is one Gradio session (a browser tab, or one gradio_client): its Interrupt reaches only its own
jobs, and its queued jobs go when it closes. A REST client is its login when the API has one, else its
address: A1111 clients send no other identity, so without a login every client on one machine is one
owner (a job can still be named by the ``force_task_id`` it was sent with).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pipelines.jobs import JobOwner
from pipelines.jobs.owner import LOCAL


def page_owner(request: Any) -> JobOwner:
    """The owner for a Gradio event's ``gr.Request`` (None outside a served page: the in-process caller)."""
    session = getattr(request, "session_hash", None)
    return JobOwner("ui", session) if session else LOCAL


def api_owner(request: Any) -> JobOwner:
    """The owner for a Starlette request: its Basic-auth user when it sent one, else its client address."""
    user = _basic_user(request.headers.get("authorization", ""))
    if user:
        return JobOwner("api", f"user {user}")
    client = request.client
    return JobOwner("api", client.host if client is not None else "unknown")


def _basic_user(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, _ = decoded.partition(":")
    return user if sep and user else None
