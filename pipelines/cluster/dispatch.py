"""The front process's side of the cluster: run one job on a replica as if it ran here.

:class:`ClusterDevices` is the engine's :class:`~pipelines.jobs.remote.RemoteDevices` under ``--ray``. For each
job it opens a stream to the Serve deployment (asking for a replica that holds the job's checkpoint), reads
the events on a pump thread, and on the job's own thread: mirrors progress into the caller's JobState and
progress callback, saves each finished image into this process's outputs, carries the caller's Interrupt and
Skip to the job control, and gives up with :class:`~pipelines.errors.ReplicaLostError` when the replica dies
or falls silent, so the caller never waits on a dead replica. A job whose replica died before taking it is
sent once more (nothing of it ran).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ray import exceptions as ray_errors

from pipelines.cluster.control import POLL_S
from pipelines.cluster.messages import (
    Heartbeat,
    ImageSaved,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStarted,
    RemoteJob,
    ReplicaReport,
)
from pipelines.errors import ReplicaLostError
from pipelines.outputs import SaveFn
from pipelines.progress import JobState, ProgressFn
from pipelines.results import GeneratedImage, GenerationResult

log = logging.getLogger(__name__)

SILENCE_S = 60.0  # no event (not even a heartbeat) from the replica running a job for this long: it is gone
WAIT_FOR_REPLICA_S = 600.0  # a job no replica has taken yet (Serve replacing a dead one, say) waits this long
RECENT_PLACEMENTS = 50  # placements the status keeps
_END = object()


class _NotStarted(Exception):
    """The replica died before it took the job: nothing of it ran, so it may be sent again."""


class ClusterDevices:
    """Engine replicas on a Ray Serve deployment, reached through ``handle``; ``control`` is the JobControl
    actor; ``close`` lets go of the cluster."""

    def __init__(self, handle: Any, control: Any, replicas: int, *, address: str,
                 close: Callable[[], None], app_status: Callable[[], dict[str, Any]]) -> None:
        self._handle = handle
        self._control = control
        self._replicas = replicas
        self._address = address
        self._close = close
        self._app_status = app_status
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, Any]] = {}  # replica id -> what its last event said, and its state
        self._placements: deque[dict[str, Any]] = deque(maxlen=RECENT_PLACEMENTS)

    @property
    def replicas(self) -> int:
        return self._replicas

    # ---- one job -----------------------------------------------------------------------------
    def run(self, request: Any, state: JobState, on_progress: ProgressFn, save: SaveFn) -> GenerationResult:
        job_id = uuid.uuid4().hex
        model = getattr(request, "model", None) or ""
        try:
            for attempt in (1, 2):
                try:
                    return self._stream(RemoteJob(job_id, request), model, state, on_progress, save)
                except _NotStarted as exc:
                    if attempt == 2:
                        raise ReplicaLostError(f"no engine replica could take the job: {exc}") from None
                    log.warning("the replica chosen for job %s died before taking it (%s); sending it again",
                                job_id, exc)
        finally:
            self._control.forget.remote(job_id)
        raise AssertionError("unreachable")

    def _stream(self, job: RemoteJob, model: str, state: JobState, on_progress: ProgressFn,
                save: SaveFn) -> GenerationResult:
        response = self._handle.options(stream=True, multiplexed_model_id=model, method_name="run").remote(job)
        events: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=_pump, args=(response, events), daemon=True, name=f"atelier-pump-{job.job_id}").start()
        started: JobStarted | None = None
        saved: dict[str, tuple[Path | None, Any]] = {}  # stand-in path -> (the path here, the image)
        interrupted = False
        last_event = time.monotonic()
        while True:
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                event = None
            if state.interrupted and not interrupted:  # the caller's presses, to the replica running the job
                interrupted = True
                self._control.interrupt.remote(job.job_id)
            if state.take_skip():
                self._control.skip.remote(job.job_id)
            if event is None:
                quiet = time.monotonic() - last_event
                if started is None and quiet > WAIT_FOR_REPLICA_S:  # every replica busy or starting, for too long
                    response.cancel()
                    raise ReplicaLostError(f"no engine replica took the job in {WAIT_FOR_REPLICA_S:.0f} s")
                if started is not None and quiet > SILENCE_S:
                    response.cancel()
                    raise self._lost(job, started, f"no word from it for {SILENCE_S:.0f} s")
                continue
            last_event = time.monotonic()
            if isinstance(event, BaseException):
                if started is None and isinstance(event, (ray_errors.RayActorError, ray_errors.ActorUnavailableError)):
                    raise _NotStarted(str(event).splitlines()[0])
                raise self._lost(job, started, str(event).splitlines()[0]) from event
            if event is _END:
                raise self._lost(job, started, "its stream ended without a result")
            if isinstance(event, JobStarted):
                started = event
                self._placed(job, event, getattr(job.request, "mode", "?"))
            elif isinstance(event, JobProgress):
                if event.state is not None:
                    event.state.apply(state, event.update.preview)
                on_progress(event.update)
            elif isinstance(event, ImageSaved):
                path = save(event.image, mode=event.mode, seed=event.seed, infotext=event.infotext, kind=event.kind)
                saved[event.token] = (path, event.image)
            elif isinstance(event, JobFinished):
                self._finished(job, event.replica, "done")
                return _with_paths(event.result, saved)
            elif isinstance(event, JobFailed):
                if started is not None:
                    self._finished(job, started.replica, f"failed: {event.error_type}")
                raise event.rebuild()
            elif not isinstance(event, Heartbeat):
                log.warning("unexpected event from the replica: %r", event)

    def _lost(self, job: RemoteJob, started: JobStarted | None, why: str) -> ReplicaLostError:
        where = (f"replica {started.replica.replica_id} on {started.replica.node} (pid {started.replica.pid})"
                 if started is not None else "its replica")
        if started is not None:
            with self._lock:
                self._known.setdefault(started.replica.replica_id, {})["alive"] = False
            self._finished(job, started.replica, "replica lost")
        log.error("job %s: %s stopped: %s", job.job_id, where, why)
        return ReplicaLostError(f"the job was lost: {where} stopped ({why}). Its images so far that were saved are "
                                "in the outputs; send the job again and it goes to a live replica.")

    # ---- what runs where ----------------------------------------------------------------------
    def _placed(self, job: RemoteJob, started: JobStarted, mode: str) -> None:
        replica = started.replica
        log.info("%s job %s placed on replica %s (%s, pid %d): checkpoint %s %s", mode, job.job_id[:8],
                 replica.replica_id, replica.node, replica.pid, started.model or "-",
                 "already loaded there" if started.model_was_loaded else "loaded for this job" if started.model
                 else "not needed")
        with self._lock:
            self._note(replica, running=job.job_id)
            self._placements.appendleft({"job_id": job.job_id, "mode": mode, "model": started.model,
                                         "replica_id": replica.replica_id, "node": replica.node, "pid": replica.pid,
                                         "model_was_loaded": started.model_was_loaded, "outcome": "running"})

    def _finished(self, job: RemoteJob, replica: ReplicaReport, outcome: str) -> None:
        with self._lock:
            self._note(replica, running=None)
            for placement in self._placements:
                if placement["job_id"] == job.job_id:
                    placement["outcome"] = outcome

    def _note(self, replica: ReplicaReport, *, running: str | None) -> None:
        known = self._known.setdefault(replica.replica_id, {"alive": True})
        known.update({**asdict(replica), "checkpoints": list(replica.checkpoints), "running_job": running})

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"mode": "ray", "address": self._address, "replicas": self._replicas,
                    "known_replicas": [dict(info) for info in self._known.values()],
                    "placements": [dict(p) for p in self._placements], "serve": self._app_status()}

    def close(self) -> None:
        self._close()


def _pump(response: Any, events: queue.Queue[Any]) -> None:
    """Read the replica's stream into ``events`` (an exception, if it breaks; _END when it ends)."""
    try:
        for event in response:
            events.put(event)
    except BaseException as exc:  # handed to the job's thread, which reports it
        events.put(exc)
        return
    events.put(_END)


def _with_paths(result: GenerationResult, saved: dict[str, tuple[Path | None, Any]]) -> GenerationResult:
    """The replica's result with the paths its images were saved at here in place of its stand-ins, and their
    pixels (sent once, with ImageSaved) back in."""

    def placed(image: GeneratedImage | None) -> GeneratedImage | None:
        if image is None or image.path is None:
            return image
        path, pixels = saved.get(str(image.path), (None, image.image))
        return replace(image, path=path, image=image.image if image.image is not None else pixels)

    return replace(result, images=[placed(image) for image in result.images], grid=placed(result.grid))
