"""Who owns a job and when it may use the device: the one queue every job waits in (UI, API, CLI, scripts)."""

from pipelines.jobs.device_queue import DeviceQueue, QueuedJob
from pipelines.jobs.owner import JobOwner

__all__ = ["DeviceQueue", "JobOwner", "QueuedJob"]
