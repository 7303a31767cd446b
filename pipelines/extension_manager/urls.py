"""Which sources an extension may be cloned from, and which folder it goes into.

Only ``https``, ``http``, ``ssh`` and ``git`` URLs and scp-like ``user@host:path`` (ssh) reach git;
local paths (and ``file://``) only while the server is reachable from this machine alone. git's
remote-helper syntax (``ext::sh -c ...``, ``fd::``, any ``transport::address``) runs programs, and an
argument starting with ``-`` would be read as an option: both are refused here, before git runs (git
is also called with ``--`` before its arguments and ``protocol.ext.allow=never``).

A folder name is derived from the URL (its last part, ``.git`` dropped) and reduced to letters,
digits, ``.``, ``_`` and ``-``; a name the user gives is refused rather than changed when it is not
such a plain name. :func:`child_folder` makes sure a name stays a direct child of the extensions folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipelines.errors import ValidationError

REMOTE_SCHEMES = ("https", "http", "ssh", "git")
MAX_NAME = 100
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*@[A-Za-z0-9.][A-Za-z0-9.-]*:(?!//)\S+$")
_TRANSPORT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$")


@dataclass(frozen=True)
class ExtensionSource:
    """A checked clone source: what git is given and the folder name it installs as."""

    url: str
    local: bool  # a path on this machine (or file://)
    name: str


def check_source(url: str, *, allow_local: bool, name: str | None = None, field: str = "url") -> ExtensionSource:
    """``url`` as a source git may clone, with its folder name; a ValidationError naming ``field`` otherwise.

    ``allow_local``: local paths are accepted (only when the server is reachable from this machine alone).
    ``name``: the folder name the user asked for (checked, not changed); else derived from the URL.
    """
    url = (url or "").strip()
    if not url:
        raise ValidationError(field, "give the URL of a git repository (https://, http://, ssh://, git:// or "
                                     "user@host:path)")
    if url.startswith("-"):
        raise ValidationError(field, f"{url!r} looks like a command-line option, not a URL")
    if _TRANSPORT.match(url):
        raise ValidationError(field, f"git remote helpers ({url.split('::')[0]}::...) are not allowed; "
                                     "use an https, http, ssh or git URL")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValidationError(field, "a URL cannot contain spaces or control characters")
    local = _is_local(url)
    if local:
        if not allow_local:
            raise ValidationError(field, "local paths can only be installed while Atelier serves this machine "
                                         "alone (without --listen, --share or another --server-name)")
        path = Path(url[len("file://"):] if url.startswith("file://") else url).expanduser()
        if not path.is_dir():
            raise ValidationError(field, f"no folder at {path}")
        url = str(path.resolve())
    elif not _SCP_LIKE.match(url):
        parts = urlsplit(url)
        if not parts.scheme:
            raise ValidationError(field, f"{url!r} is not a URL; use https://, http://, ssh://, git:// or "
                                         "user@host:path")
        if parts.scheme.lower() not in REMOTE_SCHEMES:
            raise ValidationError(field, f"{parts.scheme}: URLs are not allowed; use https, http, ssh "
                                         "or git (or user@host:path for ssh)")
        if not parts.hostname:
            raise ValidationError(field, f"{url!r} names no host")
        if parts.hostname.startswith("-") or (parts.username or "").startswith("-"):
            raise ValidationError(field, f"{url!r}: a host or user name cannot start with '-'")
    folder = check_name(name, field="name") if name and name.strip() else folder_name(url)
    return ExtensionSource(url=url, local=local, name=folder)


def _is_local(url: str) -> bool:
    if url.startswith("file://"):
        return True
    if _SCP_LIKE.match(url):
        return False
    if "://" in url:
        return False
    return url.startswith(("/", "./", "../", "~", ".\\")) or Path(url).is_absolute()


def folder_name(url: str) -> str:
    """The folder an extension cloned from ``url`` goes into: the URL's last part without ``.git``,
    reduced to letters, digits, ``.``, ``_`` and ``-`` (A1111 also names the folder after the repo)."""
    last = re.split(r"[/\\:]", url.rstrip("/\\"))[-1]
    if last.endswith(".git"):
        last = last[: -len(".git")]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", last).lstrip(".-")[:MAX_NAME].rstrip(".")
    if not cleaned:
        raise ValidationError("url", f"cannot derive a folder name from {url!r}; give one")
    return cleaned


def check_name(name: str, *, field: str = "name") -> str:
    """A folder name the user gave (or an extension's name in a request): a plain name, never a path."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or not _PLAIN_NAME.match(name) or ".." in name:
        raise ValidationError(field, f"{name!r} is not a plain folder name (letters, digits, '.', '_', '-'; "
                                     "no path, no leading '.' or '-')")
    return name


def check_branch(branch: str | None, *, field: str = "branch") -> str | None:
    """A branch to clone, or None for the remote's default; never an option or a ref trick."""
    branch = (branch or "").strip()
    if not branch:
        return None
    bad = ("..", "//", "@{", ".lock")
    if not _BRANCH.match(branch) or any(b in branch for b in bad) or branch.endswith(("/", ".")):
        raise ValidationError(field, f"{branch!r} is not a branch name git accepts")
    return branch


def child_folder(root: Path, name: str, *, field: str = "name") -> Path:
    """``root / name`` when that is a direct child of ``root`` (links resolved); a ValidationError otherwise."""
    name = check_name(name, field=field)
    root = root.resolve()
    path = root / name
    target = path.resolve()
    if target.parent != root and not path.is_symlink():
        raise ValidationError(field, f"{name!r} is not inside the extensions folder")
    return path
