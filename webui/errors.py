"""Turn core exceptions into messages the UI shows, never a traceback."""

from __future__ import annotations

import logging

import gradio as gr

from pipelines.errors import AtelierError

log = logging.getLogger(__name__)


def user_error(exc: BaseException, *, title: str = "Cannot generate") -> gr.Error:
    """A gr.Error for the UI: the core's own message, or a short note for bugs."""
    if isinstance(exc, AtelierError):
        return gr.Error(str(exc), title=title)
    log.exception("unexpected error", exc_info=exc)
    return gr.Error(f"Internal error ({type(exc).__name__}: {exc}). The details are in the server log.", title="Error")
