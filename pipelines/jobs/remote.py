"""Devices in other processes: what the engine needs from them to run a job there instead of here.

Embedded (the default), the engine runs every job in its own process. With ``--ray`` it hands each job to a
:class:`RemoteDevices` (pipelines/cluster), which runs it on one of its engine replicas and reports back
progress, previews and finished images exactly as a local job does.
"""

from __future__ import annotations

from typing import Any, Protocol

from pipelines.outputs import SaveFn
from pipelines.progress import JobState, ProgressFn
from pipelines.results import GenerationResult


class RemoteDevices(Protocol):
    """Engine replicas elsewhere, one job at a time each."""

    @property
    def replicas(self) -> int:
        """How many jobs may run at once (the engine's queue gets one slot per replica)."""
        ...

    def run(self, request: Any, state: JobState, on_progress: ProgressFn, save: SaveFn) -> GenerationResult:
        """Run the (validated) request on a replica: ``state`` mirrors the replica's job state and carries the
        caller's Interrupt and Skip to it; ``save`` stores each image the job saves, here, as it is made.
        Raises ReplicaLostError when the replica dies or goes silent."""
        ...

    def status(self) -> dict[str, Any]:
        """What runs where: the replicas, the models each holds, the recent jobs' placements."""
        ...

    def close(self) -> None:
        """Let go of the cluster (a local one is shut down)."""
        ...
