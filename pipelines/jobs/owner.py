"""Who a job belongs to, so that Interrupt, Skip and a closed browser tab touch only that user's jobs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobOwner:
    """The user or client a job runs for.

    ``kind`` says where it came from ("ui": a browser tab, keyed by Gradio's session hash; "api": a REST
    client, keyed by its login, else its address; "cli"; "local" for tests and in-process callers) and ``key``
    tells owners of one kind apart. Two API clients on one address without logins are one owner: nothing
    in their requests tells them apart (A1111 clients can name one job by its ``force_task_id``).
    """

    kind: str
    key: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


LOCAL = JobOwner("local", "in-process")  # callers that don't say (tests, the bench, extensions' own jobs)
