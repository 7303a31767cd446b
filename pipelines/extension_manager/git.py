"""Everything Atelier asks of git, through the git executable.

Why the executable and not a Python library: it speaks every transport users paste (https with
credentials helpers, ssh with their keys and config, git://), reports clone progress, and its
safety switches are documented; dulwich would add a dependency and its own transport stack. The
README and tests/run.sh install git where it is missing.

Every call:
- passes ``--`` before URLs and paths, so nothing a user typed is read as an option;
- sets ``protocol.ext.allow=never`` (``ext::`` runs commands) and, for remote sources,
  ``protocol.file.allow=never``; the URL was already checked (:mod:`.urls`);
- runs with ``GIT_TERMINAL_PROMPT=0`` (a private repo fails instead of waiting for a password on the
  server's terminal) and ``safe.directory`` set to the extension's folder only.

A clone goes into a temporary folder inside the extensions folder and is renamed into place only when
it is complete, so a failed or interrupted clone leaves no half folder behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.extension_manager.errors import ExtensionError
from pipelines.progress import ProgressFn, ProgressUpdate, ignore_progress

GIT_TIMEOUT_S = 600  # a clone of a big repo on a slow line; local calls take milliseconds
ROLLBACK_REF = "refs/atelier/previous"  # the commit before the last update (keeps it from being pruned)
TEMP_PREFIX = ".installing-"
_PERCENT = re.compile(r"^(?:remote: )?([A-Za-z ]+):\s+(\d+)%")


def git_executable() -> str:
    found = shutil.which("git")
    if found is None:
        raise ExtensionError("git is not installed; install it (e.g. `apt-get install git`) to manage extensions")
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="", SSH_ASKPASS="", LC_ALL="C")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")  # never ask for a password or a host key
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


def run_git(args: list[str], *, cwd: Path | None = None, allow_file: bool = False,
            on_line: Callable[[str], None] | None = None, timeout: float = GIT_TIMEOUT_S) -> str:
    """Run ``git <args>`` safely; returns stdout. A failure raises :class:`ExtensionError` with git's message.

    ``on_line`` receives each line (or ``\\r``-separated progress update) git writes to stderr as it comes.
    """
    command = [git_executable(), "-c", "protocol.ext.allow=never",
               "-c", f"protocol.file.allow={'always' if allow_file else 'never'}"]
    if cwd is not None:
        command += ["-c", f"safe.directory={Path(cwd).resolve()}"]
    command += args
    process = subprocess.Popen(command, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    stderr_lines: list[str] = []
    reader = threading.Thread(target=_read_stderr, args=(process, stderr_lines, on_line), daemon=True)
    reader.start()
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise ExtensionError(f"git {args[0]} took longer than {timeout:g} s and was stopped") from None
    finally:
        reader.join(5)
    if process.returncode != 0:
        message = " ".join(line for line in stderr_lines if line and not _PERCENT.match(line))[-600:]
        raise ExtensionError(f"git {args[0]} failed: {message or f'exit status {process.returncode}'}")
    return stdout.decode("utf-8", "replace")


def _read_stderr(process: subprocess.Popen, lines: list[str], on_line: Callable[[str], None] | None) -> None:
    buffer = b""
    assert process.stderr is not None
    while chunk := process.stderr.read1(4096):  # type: ignore[attr-defined]
        buffer += chunk
        *done, buffer = re.split(rb"[\r\n]", buffer)
        for raw in done:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                lines.append(line)
                if on_line is not None:
                    on_line(line)
    if buffer.strip():
        lines.append(buffer.decode("utf-8", "replace").strip())


def progress_reporter(job: str, on_progress: ProgressFn) -> Callable[[str], None]:
    """Turns git's ``Receiving objects:  45% (9/20)`` lines into progress updates (0-100 per phase)."""

    def on_line(line: str) -> None:
        match = _PERCENT.match(line)
        if match:
            on_progress(ProgressUpdate(job=job, step=int(match.group(2)), total=100, text=match.group(1).strip()))

    return on_line


def clone(url: str, target: Path, *, branch: str | None = None, local: bool = False,
          on_progress: ProgressFn = ignore_progress,
          prepare: Callable[[Path], None] | None = None) -> None:
    """Clone ``url`` (already checked) into ``target``, which must not exist yet.

    The clone is made in a temporary folder beside ``target``; ``prepare(folder)`` (the requirements
    check and install) runs on it there; only then is it renamed to ``target``. Any failure removes it.
    """
    if target.exists() or target.is_symlink():
        raise ExtensionError(f"{target.name} is already installed (the folder {target} exists)")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{target.name}-", dir=target.parent))
    try:
        args = ["clone", "--progress", "--no-recurse-submodules"]
        if branch:
            args.append(f"--branch={branch}")
        run_git([*args, "--", url, str(temp)], allow_file=local, on_line=progress_reporter("install", on_progress))
        on_progress(ProgressUpdate(job="install", step=100, total=100, text="Cloned"))
        if prepare is not None:
            prepare(temp)
        if target.exists() or target.is_symlink():
            raise ExtensionError(f"{target.name} was installed by someone else meanwhile")
        os.rename(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


@dataclass(frozen=True)
class Checkout:
    """What git says about an extension's folder."""

    remote: str  # origin's URL ("" when there is none)
    branch: str  # the checked-out branch ("" when HEAD is detached)
    commit_hash: str
    commit_date: int  # committer time, seconds since the epoch (A1111's /extensions)
    previous_commit: str  # the commit before the last update ("" when there is nothing to roll back to)


def is_checkout(folder: Path) -> bool:
    """The folder is a git checkout of its own (not just a folder inside one)."""
    return (folder / ".git").exists()


def read_checkout(folder: Path) -> Checkout:
    out = run_git(["log", "-1", "--format=%H%n%ct"], cwd=folder).split()
    commit_hash, commit_date = (out[0], int(out[1])) if len(out) == 2 else ("", 0)
    branch = _optional(["symbolic-ref", "--short", "-q", "HEAD"], folder)
    remote = _optional(["config", "--get", "remote.origin.url"], folder)
    previous = _optional(["rev-parse", "-q", "--verify", ROLLBACK_REF], folder)
    return Checkout(remote=remote, branch=branch, commit_hash=commit_hash, commit_date=commit_date,
                    previous_commit=previous)


def _optional(args: list[str], folder: Path) -> str:
    try:
        return run_git(args, cwd=folder).strip()
    except ExtensionError:
        return ""


def fetch(folder: Path, *, local: bool = False) -> None:
    run_git(["fetch", "--quiet", "--no-recurse-submodules", "origin"], cwd=folder, allow_file=local)


def commits_behind(folder: Path) -> int:
    """How many commits the branch's upstream has that HEAD has not (after :func:`fetch`)."""
    try:
        count = run_git(["rev-list", "--count", "HEAD..@{upstream}"], cwd=folder)
    except ExtensionError as exc:
        raise ExtensionError(f"{folder.name} follows no remote branch, so it cannot be updated ({exc})") from None
    return int(count.strip() or 0)


def fast_forward(folder: Path) -> tuple[str, str]:
    """Move the branch to its fetched upstream, fast-forward only; the old commit is kept under
    :data:`ROLLBACK_REF`. Returns (old, new) commits; equal when it was up to date."""
    old = run_git(["rev-parse", "HEAD"], cwd=folder).strip()
    run_git(["merge", "--ff-only", "--quiet", "@{upstream}"], cwd=folder)
    new = run_git(["rev-parse", "HEAD"], cwd=folder).strip()
    if new != old:
        run_git(["update-ref", ROLLBACK_REF, old], cwd=folder)
    return old, new


def roll_back(folder: Path) -> str:
    """Return the branch to the commit before the last update (local changes kept, as ``reset --keep``
    does); the rollback point is then used up. Returns the commit now checked out."""
    previous = _optional(["rev-parse", "-q", "--verify", ROLLBACK_REF], folder)
    if not previous:
        raise ExtensionError(f"{folder.name} has no earlier commit to roll back to (it was not updated here)")
    run_git(["reset", "--keep", "--quiet", previous, "--"], cwd=folder)
    run_git(["update-ref", "-d", ROLLBACK_REF], cwd=folder)
    return previous
