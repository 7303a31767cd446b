"""The job control board: Interrupt and Skip presses in the front, read by the replica running the job.

A Serve handle routes each call to any replica, so a press cannot be sent to "the replica running job X";
instead the front counts presses per job id on this small Ray actor and the replica running that job polls it
(every :data:`POLL_S`) and applies new presses to its engine, exactly as a local press would.
"""

from __future__ import annotations

POLL_S = 0.2  # how often a replica reads its job's presses


class JobControl:
    """Presses per job id: (interrupts, skips). A Ray actor (``ray.remote(JobControl)``); one per front process."""

    def __init__(self) -> None:
        self._presses: dict[str, list[int]] = {}

    def interrupt(self, job_id: str) -> None:
        self._presses.setdefault(job_id, [0, 0])[0] += 1

    def skip(self, job_id: str) -> None:
        self._presses.setdefault(job_id, [0, 0])[1] += 1

    def presses(self, job_id: str) -> tuple[int, int]:
        interrupts, skips = self._presses.get(job_id, (0, 0))
        return interrupts, skips

    def forget(self, job_id: str) -> None:
        self._presses.pop(job_id, None)


class PressReader:
    """A replica's view of one job's presses: how many are new since the last read."""

    def __init__(self) -> None:
        self.seen = (0, 0)

    def new(self, presses: tuple[int, int]) -> tuple[bool, int]:
        """(interrupt now, skips to apply) for the presses read."""
        interrupts, skips = presses
        fresh = (interrupts > self.seen[0], max(0, skips - self.seen[1]))
        self.seen = (interrupts, skips)
        return fresh
