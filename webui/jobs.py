"""Run a blocking core call in a worker thread and stream its progress to a Gradio handler.

Every long event (generate, upscale, download, load a checkpoint) goes through
:func:`run_streaming` (or :func:`run_job`, when it shows nothing but the progress bar), so
they all report progress, show live updates and turn errors into messages the same way.
A generation's core call comes from :func:`generation`, which adds the quick settings.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pipelines.progress import ProgressFn, ProgressUpdate
from webui.errors import user_error

if TYPE_CHECKING:
    from pipelines.context import AppContext
    from pipelines.jobs import JobOwner
    from pipelines.requests import GenerationRequest

Call = Callable[[ProgressFn], Any]  # the core call, given the function it reports progress to
Run = Callable[["GenerationRequest", ProgressFn, "JobOwner | None"], Any]  # a job's run: (request, report, owner)
ShowProgress = Callable[..., Any]  # gr.Progress: called as progress(fraction, desc=...)


def generation(ctx: AppContext, request: GenerationRequest, run: Run | None = None, *,
               owner: JobOwner | None = None) -> Call:
    """The core call for one generation job from the UI: ``request`` with the prompt settings the
    options hold now (the quick settings Clip skip, Emphasis and SD VAE, as A1111 applies its settings
    to every job), run by the engine as ``owner``'s job (webui/owners.py page_owner). Every tab and
    result action generates through this."""
    job = replace(request, **ctx.options.prompt_settings(), **ctx.options.grid_settings(), sd_vae=ctx.options.sd_vae(),
                  **ctx.options.decoder_settings())
    if run is not None:  # a script, or extension section values (webui/components/scripts_panel.py)
        return lambda report: run(job, report, owner)
    return lambda report: ctx.engine.generate(job, on_progress=report, owner=owner)


@dataclass
class Finished:
    result: Any = None
    error: BaseException | None = None


def stream(call: Call) -> Iterator[ProgressUpdate | Finished]:
    """Yield the call's progress updates as they come, then one :class:`Finished`."""
    updates: queue.Queue[ProgressUpdate | Finished] = queue.Queue()

    def worker() -> None:
        try:
            updates.put(Finished(result=call(updates.put)))
        except BaseException as exc:  # handed to the UI thread, which reports it
            updates.put(Finished(error=exc))

    threading.Thread(target=worker, daemon=True, name="atelier-job").start()
    while True:
        item = updates.get()
        yield item
        if isinstance(item, Finished):
            return


def describe(update: ProgressUpdate) -> str:
    if update.unit == "queue":  # waiting for the device: the text says where in the queue
        return update.text
    if update.unit == "bytes":
        return f"{update.text}: {update.step / 2**20:.1f} / {update.total / 2**20:.1f} MiB"
    return f"{update.text} · step {update.step}/{update.total}".strip(" ·")


def run_streaming(call: Call, progress: ShowProgress, *, error_title: str,
                  on_update: Callable[[ProgressUpdate], Any] | None = None) -> Generator[Any, None, Any]:
    """Run ``call`` in a worker thread; each update moves the progress bar, and what ``on_update``
    makes of it (a live preview, say; None: nothing) is yielded. Returns the call's result; a
    failure is raised as a ``gr.Error`` titled ``error_title`` (:func:`~webui.errors.user_error`).

    Use it with ``result = yield from run_streaming(...)`` in a generator event function.
    """
    for item in stream(call):
        if isinstance(item, Finished):
            if item.error is not None:
                raise user_error(item.error, title=error_title) from item.error
            return item.result
        progress(item.fraction, desc=describe(item))
        if on_update is not None and (shown := on_update(item)) is not None:
            yield shown
    raise AssertionError("stream() always ends with Finished")


def run_job(call: Call, progress: ShowProgress, *, error_title: str) -> Any:
    """:func:`run_streaming` for an event that shows only the progress bar: returns the result."""
    try:
        next(run_streaming(call, progress, error_title=error_title))
    except StopIteration as done:  # without on_update, it yields nothing and returns at once
        return done.value
    raise AssertionError("run_streaming() yields only what on_update makes")
