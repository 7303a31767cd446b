"""The gate: installing, updating, rolling back, uninstalling and enabling extensions run code on this
machine, so they are refused while the server is reachable beyond it (``--listen``, ``--share``, a
``--server-name`` other than a loopback address) unless ``--enable-insecure-extension-access`` is given
(A1111's rule and flag names). The manager's methods check it themselves, so every caller (the UI, the
REST API, a script) is held to it, whatever buttons are shown.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pipelines.extension_manager.errors import ExtensionAccessDenied
from pipelines.settings import Settings

INSECURE_FLAG = "--enable-insecure-extension-access"


def is_loopback(host: str | None) -> bool:
    """True for no host (Atelier's default 127.0.0.1), ``localhost`` and loopback addresses."""
    if host is None or host.strip().lower() in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ExtensionAccess:
    """Whether extension changes are allowed in this process, and why not."""

    exposed_by: tuple[str, ...] = ()  # the flags that make the server reachable from elsewhere
    insecure_allowed: bool = False  # --enable-insecure-extension-access

    @classmethod
    def from_settings(cls, settings: Settings) -> ExtensionAccess:
        exposed = []
        if settings.listen:
            exposed.append("--listen")
        if settings.share:
            exposed.append("--share")
        if not is_loopback(settings.server_name):
            exposed.append(f"--server-name {settings.server_name}")
        return cls(exposed_by=tuple(exposed), insecure_allowed=settings.enable_insecure_extension_access)

    @property
    def local_only(self) -> bool:
        """Served to this machine alone (local paths may then be installed)."""
        return not self.exposed_by

    @property
    def allowed(self) -> bool:
        return self.local_only or self.insecure_allowed

    def refusal(self, action: str) -> str | None:
        """Why ``action`` is refused, or None when it is allowed."""
        if self.allowed:
            return None
        return (f"{action} is disabled because this server is reachable from other machines "
                f"({', '.join(self.exposed_by)}); restart Atelier with {INSECURE_FLAG} to allow it")

    def check(self, action: str) -> None:
        """Raise :class:`ExtensionAccessDenied` when ``action`` (e.g. "Installing extensions") is refused."""
        reason = self.refusal(action)
        if reason is not None:
            raise ExtensionAccessDenied(reason)
