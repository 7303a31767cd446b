"""Exceptions the core raises for problems a user can fix.

Adapters (UI, REST API, CLI) turn these into a readable message or a 4xx
response; anything else is a bug and is reported as such.
"""

from __future__ import annotations


class AtelierError(Exception):
    """Base class for errors whose message is meant for the user."""


class ValidationError(AtelierError):
    """A request field holds a value the core cannot use."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ModelNotFoundError(AtelierError):
    """No installed or downloadable model matches the name asked for."""


class ModelUnavailableError(AtelierError):
    """A model is known but cannot be obtained right now (offline, no access)."""


class UnsupportedModelError(AtelierError):
    """The files describe a model architecture Atelier does not run."""


class DamagedModelError(AtelierError):
    """A model file is cut short or is not the format its name says (an interrupted download or copy)."""


class UnsafeFormatError(AtelierError):
    """A pickled checkpoint was asked for without the explicit opt-in."""


class GenerationInterrupted(AtelierError):
    """Raised inside a job that was interrupted before it produced any image."""


class DiskFullError(AtelierError):
    """A file could not be written because the disk (or the user's quota) is full; nothing partial was left."""


class OutOfMemoryError(AtelierError):
    """A job did not fit in the device's memory, even in the lowest-memory mode it was retried in."""


class ExtensionError(AtelierError):
    """An extension's hook raised: the job it ran in fails, naming the extension; the next job is unaffected."""

    def __init__(self, extension: str, point: str, cause: BaseException) -> None:
        super().__init__(f"extension {extension!r} failed in {point}: {type(cause).__name__}: {cause}")
        self.extension = extension
        self.point = point


class QueueFullError(AtelierError):
    """The device queue holds as many waiting jobs as it may: try again later (the API answers 503 + Retry-After)."""

    def __init__(self, waiting: int, retry_after_s: int) -> None:
        super().__init__(f"the queue is full ({waiting} jobs waiting for the device); try again in about "
                         f"{retry_after_s} s")
        self.waiting = waiting
        self.retry_after_s = retry_after_s


class JobCancelledError(AtelierError):
    """A job was taken out of the queue before it started (its owner pressed Interrupt or closed the page)."""


class ReplicaLostError(AtelierError):
    """The cluster replica running a job stopped (its process or machine died) or went silent: the job failed,
    the next one goes to a live replica (the API answers 503)."""
