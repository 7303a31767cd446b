"""How the page's generation events meet the engine's one device queue (pipelines/jobs).

Gradio would otherwise keep its own queue in front of ours, counting only the page's jobs. Every event
that generates lets as many calls in as the engine's queue holds (its waiting places plus the running
job), so the engine's queue is the only one: page, API and CLI jobs wait in one line, and each waiting
page is told its place in it (the progress bar's text). The queue refuses the rest, clearly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from pipelines.context import AppContext
from pipelines.jobs import JobOwner
from webui.owners import page_owner

DEVICE_EVENTS = "device"  # the Gradio concurrency group of the events that wait in the device queue


def device_events(ctx: AppContext) -> dict[str, Any]:
    """Options for an event that runs a generation job (txt2img, img2img, Vary, Upscale)."""
    return {"concurrency_id": DEVICE_EVENTS, "concurrency_limit": ctx.settings.max_queued_jobs + 1}


def interrupt_own(ctx: AppContext) -> Callable[[gr.Request], None]:
    """The page's Interrupt: stop this page's running job and drop its waiting ones, never another's."""

    def interrupt(request: gr.Request) -> None:
        ctx.engine.interrupt(owner=page_owner(request))

    return interrupt


def skip_own(ctx: AppContext) -> Callable[[gr.Request], None]:
    """The page's Skip: cut this page's current image short."""

    def skip(request: gr.Request) -> None:
        ctx.engine.skip(owner=page_owner(request))

    return skip


def free_closed_page(ctx: AppContext) -> Callable[[gr.Request], None]:
    """For Gradio's unload: when a page closes, its jobs still waiting in the queue are dropped (a running
    one finishes and is saved, as in A1111)."""

    def closed(request: gr.Request) -> None:
        owner: JobOwner = page_owner(request)
        if owner.kind == "ui":
            ctx.engine.cancel_queued(owner, reason="the page that asked for it was closed")

    return closed
