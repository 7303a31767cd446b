"""What is installed: one record per extension folder, read from the folder and from git.

Extensions are the folders directly inside the extensions folder (``--extensions-dir``, default
``data_dir/extensions``) and the built-in ones shipped in the repository's ``extensions/``. Which
folders are built-in is the loader's rule (:data:`~pipelines.extension_host.loader.BUILTIN_EXTENSIONS`,
a list of names in the built-in folder), so the tab and the loader always agree. Folders whose name
starts with ``.`` or ``_`` are skipped (an install in progress is ``.installing-*``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pipelines.extension_host.loader import BUILTIN_DIR, BUILTIN_EXTENSIONS, ENTRY_FILE
from pipelines.extension_manager import git
from pipelines.extension_manager.errors import ExtensionError
from pipelines.extension_manager.state import ExtensionSwitches


@dataclass(frozen=True)
class ExtensionRecord:
    name: str
    folder: Path
    builtin: bool
    enabled: bool
    disabled_reason: str | None = None  # why it is not enabled
    remote: str = ""  # origin's URL; "" for folders that are not git checkouts
    branch: str = ""
    commit_hash: str = ""
    commit_date: int = 0  # seconds since the epoch; 0 when unknown
    previous_commit: str = ""  # what Rollback returns to ("" = nothing to roll back to)
    problem: str | None = None  # git could not read the folder

    @property
    def has_entry(self) -> bool:
        """The folder has an ``extension.py`` (an Atelier extension; A1111 extensions do not)."""
        return (self.folder / ENTRY_FILE).is_file()

    @property
    def version(self) -> str:
        """A1111's ``version``: the short commit hash."""
        return self.commit_hash[:8]

    @property
    def is_checkout(self) -> bool:
        return bool(self.commit_hash)


def builtin_folder(configured: Path | None) -> Path:
    """The folder of the extensions shipped with Atelier (the repository's ``extensions/`` by default)."""
    return configured or BUILTIN_DIR


def is_builtin(folder: Path, builtin_root: Path) -> bool:
    """A folder shipped with Atelier: one of the built-in names, in the built-in folder."""
    return folder.name in BUILTIN_EXTENSIONS and folder.resolve().parent == builtin_root.resolve()


def extension_folders(roots: list[Path]) -> list[Path]:
    """Every extension folder in ``roots`` (the first folder of a name wins), sorted by name."""
    found: dict[str, Path] = {}
    seen_roots = set()
    for root in roots:
        if not root.is_dir() or root.resolve() in seen_roots:
            continue
        seen_roots.add(root.resolve())
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and not folder.name.startswith((".", "_")) and folder.name not in found:
                found[folder.name] = folder
    return [found[name] for name in sorted(found, key=str.lower)]


def read_record(folder: Path, *, builtin_root: Path, switches: ExtensionSwitches) -> ExtensionRecord:
    builtin = is_builtin(folder, builtin_root)
    reason = switches.reason(folder.name, builtin=builtin)
    record = ExtensionRecord(name=folder.name, folder=folder, builtin=builtin, enabled=reason is None,
                             disabled_reason=reason)
    if not git.is_checkout(folder):
        return record
    try:
        checkout = git.read_checkout(folder)
    except ExtensionError as exc:
        return replace(record, problem=str(exc))
    return replace(record, remote=checkout.remote, branch=checkout.branch, commit_hash=checkout.commit_hash,
                    commit_date=checkout.commit_date, previous_commit=checkout.previous_commit)
