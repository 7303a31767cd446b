"""Run a blocking core call in a worker thread and stream its progress to a Gradio handler."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pipelines.progress import ProgressUpdate


@dataclass
class Finished:
    result: Any = None
    error: BaseException | None = None


def stream(call: Callable[[Callable[[ProgressUpdate], None]], Any]) -> Iterator[ProgressUpdate | Finished]:
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
    if update.unit == "bytes":
        return f"{update.text}: {update.step / 2**20:.1f} / {update.total / 2**20:.1f} MiB"
    return f"{update.text} · step {update.step}/{update.total}".strip(" ·")
