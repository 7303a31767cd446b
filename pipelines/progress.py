"""Progress of long work (downloads, sampling), and the flags that stop it.

A :class:`JobState` is created per job; the engine keeps the running one so the
UI and API can read progress and ask for an interrupt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProgressUpdate:
    """One report from a running job; ``preview`` is a PIL image or None."""

    job: str  # "txt2img", "download", ...
    step: int
    total: int
    unit: str = "steps"  # "steps" or "bytes"
    text: str = ""
    preview: Any = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0


ProgressFn = Callable[[ProgressUpdate], None]


def ignore_progress(update: ProgressUpdate) -> None:
    """Default sink for callers that do not show progress."""


@dataclass
class JobState:
    """Live, thread-safe state of the running job (what A1111 calls ``state``)."""

    job: str
    job_count: int = 1
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0
    started: float = field(default_factory=time.monotonic)
    current_preview: Any = None
    textinfo: str = ""
    _interrupted: threading.Event = field(default_factory=threading.Event)
    _skipped: threading.Event = field(default_factory=threading.Event)

    def interrupt(self) -> None:
        self._interrupted.set()

    def skip(self) -> None:
        self._skipped.set()

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def take_skip(self) -> bool:
        """True once after :meth:`skip`; the current image is cut short, the batch goes on."""
        if self._skipped.is_set():
            self._skipped.clear()
            return True
        return False

    @property
    def progress(self) -> float:
        if not self.job_count:
            return 0.0
        per_job = self.sampling_step / self.sampling_steps if self.sampling_steps else 0.0
        return min(1.0, (self.job_no + per_job) / self.job_count)

    @property
    def eta_seconds(self) -> float:
        done = self.progress
        elapsed = time.monotonic() - self.started
        return elapsed / done - elapsed if done > 0 else 0.0
