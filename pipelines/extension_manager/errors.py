"""The errors the extension manager raises; each message is meant for the user."""

from __future__ import annotations

from pipelines.errors import AtelierError


class ExtensionError(AtelierError):
    """An extension operation that could not be done (git failed, nothing to roll back, ...)."""


class ExtensionNotFoundError(ExtensionError):
    """No installed extension has that name."""


class ExtensionAccessDenied(ExtensionError):
    """Installing or changing extensions is refused: the server is reachable beyond this machine."""


class RequirementsConflict(ExtensionError):
    """An extension's requirements.txt would change a package Atelier pins; nothing was installed."""

    def __init__(self, extension: str, reasons: list[str]) -> None:
        super().__init__(f"{extension}: its requirements.txt was refused and nothing was installed: "
                         + "; ".join(reasons))
        self.extension = extension
        self.reasons = reasons


class IndexUnavailable(ExtensionError):
    """The extension index could not be fetched and no copy of it is cached."""
