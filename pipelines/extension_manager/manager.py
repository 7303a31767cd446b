"""The extension manager: one object the Extensions tab, the REST API and tests go through.

Every change (install, update, rollback, uninstall, enable/disable) first asks the
:class:`~pipelines.extension_manager.access.ExtensionAccess` gate, here and not in the callers, and
changes are made one at a time. What it changes on disk takes effect when extensions are next loaded
(at start-up; the tab's "Apply and restart UI" restarts the server).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import ValidationError
from pipelines.extension_manager import git
from pipelines.extension_manager.access import ExtensionAccess
from pipelines.extension_manager.constraints import check_requirements, install_requirements, protected_packages
from pipelines.extension_manager.errors import ExtensionError, ExtensionNotFoundError, RequirementsConflict
from pipelines.extension_manager.index import (
    DEFAULT_INDEX_URL,
    INDEX_URL_KEY,
    AvailableExtension,
    ExtensionIndex,
    SortOrder,
    load_index,
    search,
)
from pipelines.extension_manager.records import ExtensionRecord, builtin_folder, extension_folders, read_record
from pipelines.extension_manager.state import ExtensionSwitches, extension_switches, save_disabled
from pipelines.extension_manager.urls import check_branch, check_name, check_source, child_folder
from pipelines.options import OptionsStore
from pipelines.progress import ProgressFn, ignore_progress
from pipelines.settings import Settings

log = logging.getLogger(__name__)
ATELIER_ROOT = Path(__file__).resolve().parents[2]  # where Atelier's own requirements files are


@dataclass(frozen=True)
class UpdateCheck:
    name: str
    behind: int = 0  # commits the remote branch has that the extension has not
    error: str | None = None  # why it could not be checked

    @property
    def text(self) -> str:
        if self.error:
            return f"⚠️ {self.error}"
        return f"{self.behind} new commit{'s' if self.behind != 1 else ''}" if self.behind else "up to date"


class ExtensionManager:
    def __init__(self, settings: Settings, options: OptionsStore, *, access: ExtensionAccess | None = None,
                 atelier_root: Path = ATELIER_ROOT) -> None:
        self.settings = settings
        self.options = options
        self.access = access or ExtensionAccess.from_settings(settings)
        self.folder = settings.extensions_folder
        self.builtin_folder = builtin_folder(settings.builtin_extensions_dir)
        self.atelier_root = atelier_root
        self.index_cache = settings.data_dir / "cache" / "extensions-index.json"
        self.constraints_file = settings.data_dir / "cache" / "extension-constraints.txt"
        self._lock = threading.Lock()  # one change at a time

    # ---- what is installed ----------------------------------------------------------------------

    def switches(self) -> ExtensionSwitches:
        return extension_switches(self.options, self.settings)

    def records(self) -> list[ExtensionRecord]:
        """Every extension folder (built-in ones first when a name is in both), with its git state and
        whether it is enabled."""
        switches = self.switches()
        return [read_record(folder, builtin_root=self.builtin_folder, switches=switches)
                for folder in extension_folders([self.builtin_folder, self.folder])]

    def record(self, name: str) -> ExtensionRecord:
        name = check_name(name)
        for record in self.records():
            if record.name == name:
                return record
        raise ExtensionNotFoundError(f"no extension named {name!r} is installed")

    # ---- changes (each behind the gate) ------------------------------------------------------------

    def install(self, url: str, *, branch: str | None = None, name: str | None = None,
                on_progress: ProgressFn = ignore_progress) -> ExtensionRecord:
        """Clone ``url`` (a branch, into the folder ``name``) and install its requirements under
        constraints; nothing is left behind when any step fails."""
        self.access.check("Installing extensions")
        source = check_source(url, allow_local=self.access.local_only, name=name)
        branch = check_branch(branch)
        target = child_folder(self.folder, source.name)

        def prepare(folder: Path) -> None:
            install_requirements(source.name, folder, root=self.atelier_root, constraints_file=self.constraints_file)

        with self._lock:
            git.clone(source.url, target, branch=branch, local=source.local, on_progress=on_progress, prepare=prepare)
        log.info("installed extension %s from %s%s", source.name, source.url, f" ({branch})" if branch else "")
        return self.record(source.name)

    def check_updates(self, names: Iterable[str] | None = None) -> list[UpdateCheck]:
        """Fetch each git-installed extension (all of them by default) and count the commits it is behind.
        Fetching changes nothing that runs, so this is not behind the gate."""
        wanted = {check_name(n) for n in names} if names is not None else None
        results = []
        for record in self.records():
            if wanted is not None and record.name not in wanted:
                continue
            if not record.is_checkout or not record.remote:
                if wanted is not None:
                    results.append(UpdateCheck(record.name, error="not installed from a git repository"))
                continue
            try:
                git.fetch(record.folder, local=_is_local(record.remote))
                results.append(UpdateCheck(record.name, behind=git.commits_behind(record.folder)))
            except ExtensionError as exc:
                results.append(UpdateCheck(record.name, error=str(exc)))
        return results

    def update(self, name: str) -> ExtensionRecord:
        """Fetch and fast-forward; the commit before is kept for :meth:`rollback`. A new requirements.txt that
        would change Atelier's packages is refused before the extension changes."""
        self.access.check("Updating extensions")
        record = self._git_record(name)
        with self._lock:
            git.fetch(record.folder, local=_is_local(record.remote))
            self._check_upstream_requirements(record)
            old, new = git.fast_forward(record.folder)
            if new != old:
                try:
                    install_requirements(record.name, record.folder, root=self.atelier_root,
                                         constraints_file=self.constraints_file)
                except ExtensionError:
                    git.roll_back(record.folder)
                    raise
        log.info("updated extension %s: %s -> %s", record.name, old[:8], new[:8])
        return self.record(record.name)

    def rollback(self, name: str) -> ExtensionRecord:
        """Return to the commit before the last update."""
        self.access.check("Rolling back extensions")
        record = self._git_record(name)
        with self._lock:
            git.roll_back(record.folder)
        return self.record(record.name)

    def uninstall(self, name: str) -> None:
        """Remove the extension's folder (built-in ones can only be disabled)."""
        self.access.check("Uninstalling extensions")
        record = self.record(name)
        if record.builtin:
            raise ExtensionError(f"{record.name} ships with Atelier; disable it instead of uninstalling it")
        folder = child_folder(self.folder, record.name)
        if record.folder.resolve() != folder.resolve() and not folder.is_symlink():
            raise ExtensionError(f"{record.name} is not in the extensions folder {self.folder}")
        with self._lock:
            if folder.is_symlink():
                folder.unlink()
            else:
                shutil.rmtree(folder)
            disabled = self.switches().disabled
            if record.name in disabled:
                save_disabled(self.options, disabled - {record.name})
        log.info("uninstalled extension %s", record.name)

    def set_enabled(self, enabled: Iterable[str]) -> list[str]:
        """Enable exactly the extensions named in ``enabled``, disable the others (persisted in config.json
        under ``disabled_extensions``); returns the disabled names. Takes effect at the next start."""
        self.access.check("Enabling or disabling extensions")
        names = {r.name for r in self.records()}
        wanted = set(enabled)
        unknown = wanted - names
        if unknown:
            raise ValidationError("enabled", f"no extension named {sorted(unknown)} is installed")
        with self._lock:
            keep = self.switches().disabled - names  # disabled extensions whose folder is gone stay listed
            return save_disabled(self.options, keep | (names - wanted))

    def enable(self, name: str, enabled: bool = True) -> list[str]:
        """Enable or disable one extension."""
        current = {r.name for r in self.records() if r.name not in self.switches().disabled}
        name = self.record(name).name
        return self.set_enabled(current | {name} if enabled else current - {name})

    # ---- the index ---------------------------------------------------------------------------------

    def index_url(self) -> str:
        value = self.options.values().get(INDEX_URL_KEY)
        return value if isinstance(value, str) and value.strip() else DEFAULT_INDEX_URL

    def index(self, *, url: str | None = None, offline: bool = False) -> ExtensionIndex:
        """The index from ``url`` (default: the ``extensions_index_url`` option), or its saved copy. Another URL
        than the option's is refused behind the gate: a remote user must not point the server at any address."""
        configured = self.index_url()
        url = (url or "").strip() or configured
        if url != configured:
            self.access.check("Loading an extension index from another URL")
        return load_index(url, self.index_cache, offline=offline)

    def available(self, index: ExtensionIndex, *, query: str = "", tags: Iterable[str] = (),
                  hide_tags: Iterable[str] = (), sort: SortOrder = "newest") -> list[AvailableExtension]:
        records = self.records()
        return search(index, query=query, tags=tags, hide_tags=hide_tags, sort=sort,
                      installed_urls=[r.remote for r in records], installed_names=[r.name for r in records])

    # ---- helpers -----------------------------------------------------------------------------------

    def _git_record(self, name: str) -> ExtensionRecord:
        record = self.record(name)
        if not record.is_checkout or not record.remote:
            raise ExtensionError(f"{record.name} was not installed from a git repository, so it cannot be updated")
        return record

    def _check_upstream_requirements(self, record: ExtensionRecord) -> None:
        try:
            text = git.run_git(["show", "@{upstream}:requirements.txt"], cwd=record.folder)
        except ExtensionError:
            return  # no requirements.txt upstream
        check = check_requirements(text.splitlines(), protected_packages(self.atelier_root))
        if not check.ok:
            raise RequirementsConflict(record.name, list(check.refused))


def _is_local(remote: str) -> bool:
    return remote.startswith(("/", "file://")) or Path(remote).is_absolute()
