"""What crosses between the front process and an engine replica: one job in, a stream of events out.

Plain picklable dataclasses (Ray sends them with cloudpickle); no Ray import here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines import errors
from pipelines.progress import JobState, ProgressUpdate
from pipelines.results import GenerationResult

SAVED_PREFIX = "replica-saved"  # a replica's stand-in path for an image it sent to the front to save


@dataclass(frozen=True)
class RemoteJob:
    """One validated request for a replica; ``job_id`` names it to the job control (Interrupt, Skip)."""

    job_id: str
    request: Any


@dataclass(frozen=True)
class ReplicaReport:
    """Who ran a job: the replica's Serve id, its machine and process, the checkpoints it holds, jobs run."""

    replica_id: str
    node: str
    pid: int
    checkpoints: tuple[str, ...] = ()
    jobs_done: int = 0


@dataclass(frozen=True)
class JobStarted:
    """The replica took the job; ``model_was_loaded``: its checkpoint was in memory there already."""

    replica: ReplicaReport
    model: str
    model_was_loaded: bool


@dataclass(frozen=True)
class StateSnapshot:
    """The replica's job state, mirrored into the front's JobState (progress bars, /sdapi/v1/progress)."""

    job_count: int
    job_no: int
    sampling_step: int
    sampling_steps: int
    textinfo: str
    has_preview: bool

    @classmethod
    def of(cls, state: JobState) -> StateSnapshot:
        return cls(state.job_count, state.job_no, state.sampling_step, state.sampling_steps, state.textinfo,
                   state.current_preview is not None)

    def apply(self, state: JobState, preview: Any) -> None:
        state.job_count, state.job_no = self.job_count, self.job_no
        state.sampling_step, state.sampling_steps = self.sampling_step, self.sampling_steps
        state.textinfo = self.textinfo
        if preview is not None:
            state.current_preview = preview
        elif not self.has_preview:
            state.current_preview = None


@dataclass(frozen=True)
class JobProgress:
    update: ProgressUpdate
    state: StateSnapshot | None  # None: before the job held the device


@dataclass(frozen=True)
class ImageSaved:
    """A finished image the job saves: the front writes it into its outputs; ``token`` is the stand-in path the
    replica's result carries for it."""

    token: str
    image: Any
    mode: str
    seed: int | None
    infotext: str
    kind: str


@dataclass(frozen=True)
class Heartbeat:
    """Sent when the job has been quiet for a while: the replica is alive (a model loading, a long decode)."""


@dataclass(frozen=True)
class JobFinished:
    result: GenerationResult
    replica: ReplicaReport


@dataclass(frozen=True)
class JobFailed:
    """The job raised on the replica: the error's class name (one of pipelines.errors for a user's problem)
    and message, rebuilt in the front so the UI and API report it as they would a local one."""

    error_type: str
    message: str
    field: str | None = None

    @classmethod
    def of(cls, exc: BaseException) -> JobFailed:
        if isinstance(exc, errors.ValidationError):
            return cls("ValidationError", exc.message, exc.field)
        return cls(type(exc).__name__, str(exc))

    def rebuild(self) -> Exception:
        """The exception to raise in the front: the same AtelierError class with the same message; anything else
        (a bug on the replica) as a RuntimeError naming it."""
        if self.error_type == "ValidationError":
            return errors.ValidationError(self.field or "request", self.message)
        cls = getattr(errors, self.error_type, None)
        if (isinstance(cls, type) and issubclass(cls, errors.AtelierError)
                and cls.__init__ is errors.AtelierError.__init__):
            return cls(self.message)
        return RuntimeError(f"{self.error_type} on the replica: {self.message}")
