"""The one queue of device work: jobs wait in arrival order and run one at a time per device.

Embedded, there is one device (one slot); served by a Ray cluster (pipelines/cluster) there is one slot per
engine replica, so as many jobs run at once as there are replicas, each on its own. Every generation job
(UI, REST API, CLI, scripts, extensions) takes its turn here, so two jobs never share a running pipeline or
scheduler, and each waiting job knows its place. Past ``max_waiting`` waiting jobs a new one is refused at once
(:class:`~pipelines.errors.QueueFullError`, with a retry estimate) instead of piling up threads and memory.
A waiting job can be cancelled by its owner (Interrupt, a closed tab).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pipelines.errors import JobCancelledError, QueueFullError
from pipelines.jobs.owner import LOCAL, JobOwner
from pipelines.progress import JobState

log = logging.getLogger(__name__)

WaitFn = Callable[[int, int], None]  # (jobs ahead of this one, jobs waiting in all), called when it changes
DEFAULT_JOB_SECONDS = 10.0  # the Retry-After estimate before any job has finished
RECENT_JOBS = 20  # how many finished jobs' durations the estimate averages


@dataclass(eq=False)
class QueuedJob:
    """One job's place in the queue; ``task_id`` is the id a client gave it (A1111's ``force_task_id``)."""

    kind: str
    owner: JobOwner = LOCAL
    task_id: str | None = None
    state: JobState | None = None  # its progress and stop flags, once it runs
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    cancel_reason: str = ""

    def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def matches(self, owner: JobOwner | None, task_id: str | None) -> bool:
        """Whether a request from ``owner`` naming ``task_id`` (either may be None) is about this job:
        a task id names one job; else the owner's; neither: every job (in-process callers)."""
        if task_id is not None:
            return self.task_id == task_id
        return owner is None or self.owner == owner


@dataclass(frozen=True)
class QueueStatus:
    """What one caller sees of the queue: its first waiting job's place (1: next; None: none waiting);
    ``running``: the caller's running job when it has one, else the first running job (None: idle)."""

    waiting: int
    position: int | None
    running: QueuedJob | None
    running_count: int = 0


class DeviceQueue:
    """First come, first served; ``slots`` jobs on the device(s) at a time (one per device); at most
    ``max_waiting`` waiting."""

    def __init__(self, max_waiting: int, *, poll_s: float = 0.5, slots: int = 1) -> None:
        self.max_waiting = max_waiting
        self._poll_s = poll_s  # waiting jobs also re-check this often (cancellation is noticed at once anyway)
        self._cond = threading.Condition()
        self._waiting: list[QueuedJob] = []
        self._running: list[QueuedJob] = []
        self._slots = slots
        self._durations: deque[float] = deque(maxlen=RECENT_JOBS)

    @property
    def slots(self) -> int:
        return self._slots

    def set_slots(self, slots: int) -> None:
        """Run up to ``slots`` jobs at once from now on (a cluster's replica count); waiting jobs move up."""
        with self._cond:
            self._slots = max(1, slots)
            self._cond.notify_all()

    @property
    def running(self) -> QueuedJob | None:
        """The longest-running job (None: idle)."""
        running = self._running
        return running[0] if running else None

    @property
    def running_jobs(self) -> tuple[QueuedJob, ...]:
        return tuple(self._running)

    @contextmanager
    def turn(self, job: QueuedJob, on_wait: WaitFn | None = None) -> Iterator[QueuedJob]:
        """Wait for ``job``'s turn (reporting its place to ``on_wait`` as it changes), then hold the device
        until the block ends. Raises QueueFullError at once when the queue is full, JobCancelledError when
        the job is cancelled while it waits."""
        self._wait_for_turn(job, on_wait)
        started = time.monotonic()
        try:
            yield job
        finally:
            with self._cond:
                self._running.remove(job)
                self._durations.append(time.monotonic() - started)
                self._cond.notify_all()

    def _wait_for_turn(self, job: QueuedJob, on_wait: WaitFn | None) -> None:
        with self._cond:
            busy = len(self._running) >= self._slots or bool(self._waiting)
            if busy and len(self._waiting) >= self.max_waiting:
                log.warning("queue full: %d waiting; %s's %s job refused", len(self._waiting), job.owner, job.kind)
                raise QueueFullError(len(self._waiting), self.retry_after_s())
            self._waiting.append(job)
        reported: tuple[int, int] | None = None
        try:
            while True:
                with self._cond:
                    while True:
                        if job.cancelled:
                            raise JobCancelledError(f"the queued {job.kind} job was cancelled: {job.cancel_reason}")
                        if len(self._running) < self._slots and self._waiting[0] is job:
                            self._waiting.pop(0)
                            self._running.append(job)
                            return
                        place = (self._waiting.index(job) + 1, len(self._waiting))
                        if place != reported:
                            break  # report it outside the lock
                        self._cond.wait(self._poll_s)
                reported = place
                if on_wait is not None:
                    on_wait(*place)
        except BaseException:
            with self._cond:
                if job in self._waiting:
                    self._waiting.remove(job)
                    self._cond.notify_all()
            raise

    def cancel(self, owner: JobOwner | None = None, task_id: str | None = None, *, reason: str) -> int:
        """Cancel the waiting jobs a request from ``owner`` naming ``task_id`` is about (see
        :meth:`QueuedJob.matches`); the running jobs are not touched. Returns how many were cancelled."""
        with self._cond:
            chosen = [job for job in self._waiting if job.matches(owner, task_id)]
            for job in chosen:
                job.cancel(reason)
            if chosen:
                self._cond.notify_all()
        if chosen:
            log.info("cancelled %d queued job(s) of %s: %s", len(chosen), task_id or owner or "everyone", reason)
        return len(chosen)

    def status(self, owner: JobOwner | None = None, task_id: str | None = None) -> QueueStatus:
        """The queue as ``owner`` (or the holder of ``task_id``) sees it."""
        with self._cond:
            asks = owner is not None or task_id is not None
            position = next((i + 1 for i, job in enumerate(self._waiting) if asks and job.matches(owner, task_id)),
                            None)
            theirs = [job for job in self._running if asks and job.matches(owner, task_id)]
            running = theirs[0] if theirs else self._running[0] if self._running else None
            return QueueStatus(len(self._waiting), position, running, len(self._running))

    def retry_after_s(self) -> int:
        """About how long until a place frees up: the recent jobs' mean duration times the jobs ahead per slot."""
        mean = sum(self._durations) / len(self._durations) if self._durations else DEFAULT_JOB_SECONDS
        return max(1, min(3600, round(mean * (len(self._waiting) + 1) / self._slots)))
