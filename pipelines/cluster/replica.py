"""One engine replica: a model store and an engine of its own, running one job at a time for the front.

Ray Serve starts it (``serve.deployment(EngineReplica)``, pipelines/cluster/deploy.py) in a worker process
on a node with a free GPU (or CPU cores). :meth:`EngineReplica.run` is an async generator: the job runs on a
thread of its own while the replica's event loop streams its events to the front (progress with previews,
each finished image for the front to save, a heartbeat when quiet, then the result or the error) and polls the
job control for the caller's Interrupt and Skip. Serve's model multiplexing (:meth:`held_checkpoint`) tells its
router which checkpoint each replica holds, so a job goes to a replica that has its model when one does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray import serve

from pipelines.cluster.control import POLL_S, PressReader
from pipelines.cluster.messages import (
    SAVED_PREFIX,
    Heartbeat,
    ImageSaved,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStarted,
    RemoteJob,
    ReplicaReport,
    StateSnapshot,
)
from pipelines.engine import Engine
from pipelines.hooks import ExtensionRegistry
from pipelines.lazy_diffusers import warm_up
from pipelines.models.kinds import ModelType
from pipelines.models.store import ModelStore
from pipelines.progress import ProgressUpdate
from pipelines.results import GeneratedImage, GenerationResult
from pipelines.selection import CheckpointSelection
from pipelines.settings import Settings
from pipelines.upscalers.registry import UpscalerRegistry

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # a quiet job (a model loading) still sends this often; the front gives up after far longer
CHECKPOINTS_PER_REPLICA = 1  # what a replica tells the router it holds: its latest checkpoint


def build_engine(settings: Settings) -> Engine:
    """A replica's own engine: its store, selection and upscalers; no extensions (their before/after hooks and
    the history run in the front), no history (the front records the images it saves)."""
    store = ModelStore(settings)
    return Engine(settings, store, CheckpointSelection(store), UpscalerRegistry(settings, store),
                  hooks=ExtensionRegistry(), history=None)


class EngineReplica:
    """The Serve deployment's class: ``settings`` are the front's; ``control`` names the job control actor."""

    def __init__(self, settings: Settings, control: str, namespace: str, threads: int | None = None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.engine = build_engine(settings)
        # diffusers' pipelines imported now, beside the first job's wait, not inside it (as launch.py does)
        threading.Thread(target=warm_up, name="atelier-warm-up", daemon=True).start()
        self.control = ray.get_actor(control, namespace=namespace)
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        self.jobs_done = 0
        log.info("engine replica %s ready on %s (pid %d)", self.replica_id, ray.util.get_node_ip_address(),
                 os.getpid())

    def report(self) -> ReplicaReport:
        checkpoints = tuple(entry.name for entry in self.engine.store.memory()
                            if entry.type is ModelType.CHECKPOINT)
        return ReplicaReport(self.replica_id, ray.util.get_node_ip_address(), os.getpid(), checkpoints,
                             self.jobs_done)

    @serve.multiplexed(max_num_models_per_replica=CHECKPOINTS_PER_REPLICA)
    async def held_checkpoint(self, name: str) -> str:
        """Serve's record of the checkpoint this replica holds. The store loads it inside the job, where its
        progress (a download, a load) reaches the caller; this only tells the router where it will be."""
        return name

    async def run(self, job: RemoteJob):
        """Run ``job``; yields JobStarted, then JobProgress / ImageSaved / Heartbeat events, then JobFinished or
        JobFailed."""
        model = serve.get_multiplexed_model_id()
        if model:
            await self.held_checkpoint(model)
        was_loaded = bool(model) and self.engine.store.loaded(model) is not None
        yield JobStarted(self.report(), model, was_loaded)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Any] = asyncio.Queue()

        def send(event: Any) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        threading.Thread(target=self._work, args=(job, send), daemon=True, name=f"atelier-job-{job.job_id}").start()
        presses = PressReader()
        last_event = last_poll = time.monotonic()
        while True:
            try:
                event = await asyncio.wait_for(events.get(), POLL_S)
            except TimeoutError:
                event = None
            now = time.monotonic()
            if now - last_poll >= POLL_S:
                last_poll = now
                await self._apply_presses(job.job_id, presses)
            if event is None:
                if now - last_event >= HEARTBEAT_S:
                    last_event = now
                    yield Heartbeat()
                continue
            last_event = now
            yield event
            if isinstance(event, (JobFinished, JobFailed)):
                return

    async def _apply_presses(self, job_id: str, presses: PressReader) -> None:
        interrupt, skips = presses.new(await self.control.presses.remote(job_id))
        if interrupt:
            self.engine.interrupt()
        for _ in range(skips):
            self.engine.skip()

    def _work(self, job: RemoteJob, send: Any) -> None:
        """The job, on its own thread: the engine runs it as it would embedded; images go to the front."""
        saved = 0

        def save(image: Any, *, mode: str, seed: int | None, infotext: str, kind: str = "images") -> Path:
            nonlocal saved
            saved += 1
            token = f"{SAVED_PREFIX}/{job.job_id}/{saved}"
            send(ImageSaved(token, image, mode, seed, infotext, kind))
            return Path(token)

        def progress(update: ProgressUpdate) -> None:
            state = self.engine.state
            send(JobProgress(update, StateSnapshot.of(state) if state is not None else None))

        try:
            result = _without_sent_images(self.engine.generate(job.request, on_progress=progress, save=save))
        except BaseException as exc:  # reported to the front, which raises it for the caller
            if not isinstance(exc, Exception):
                log.exception("job %s failed on replica %s", job.job_id, self.replica_id)
            send(JobFailed.of(exc))
            return
        self.jobs_done += 1
        send(JobFinished(result, self.report()))


def _without_sent_images(result: GenerationResult) -> GenerationResult:
    """The result without the pixels of the images already sent to the front (it fills them back in)."""

    def light(image: GeneratedImage | None) -> GeneratedImage | None:
        sent = image is not None and image.path is not None and str(image.path).startswith(SAVED_PREFIX)
        return replace(image, image=None) if sent else image

    return replace(result, images=[light(image) for image in result.images], grid=light(result.grid))

