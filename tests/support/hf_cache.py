"""Lay a local model folder into the standard Hugging Face Hub cache layout, offline.

The result is indistinguishable (for ``huggingface_hub``, diffusers and transformers) from a real
download of ``repo_id`` at revision ``main``::

    <hf_home>/hub/models--<org>--<name>/
        blobs/<sha256 for LFS-tracked weights | git blob sha1 for small text files>
        snapshots/<commit>/<path>  -> relative symlink ../../blobs/<hash>
        refs/main                  containing <commit> (40 hex chars, no newline)

``huggingface_hub`` reads ``HF_HOME``/``HF_HUB_CACHE``/``HF_HUB_OFFLINE`` once, at import time, so
tests that rely on the environment must set it before importing it (i.e. in a subprocess).
In-process, pass the cache explicitly instead: ``cache_dir=hf_home / "hub"`` together with
``local_files_only=True`` works for ``snapshot_download``, ``scan_cache_dir`` and diffusers'
``from_pretrained``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from tests.support.hub_repo import LFS_SUFFIXES, git_blob_sha1, is_lfs

__all__ = ["install_into_hf_cache", "repo_cache_dir", "git_blob_sha1", "LFS_SUFFIXES"]

def _blob_name(file: Path) -> str:
    data = file.read_bytes()
    if is_lfs(file.name, len(data)):
        return hashlib.sha256(data).hexdigest()
    return git_blob_sha1(data)


def repo_cache_dir(hf_home: Path, repo_id: str, *, repo_type: str = "model") -> Path:
    """``<hf_home>/hub/<type>s--<org>--<name>`` (the folder ``huggingface_hub`` uses for ``repo_id``)."""
    return Path(hf_home) / "hub" / f"{repo_type}s--{repo_id.replace('/', '--')}"


def install_into_hf_cache(folder: Path, repo_id: str, hf_home: Path, *, commit: str | None = None) -> Path:
    """Install every file under ``folder`` as snapshot ``commit`` of ``repo_id`` in the HF cache at ``hf_home``.

    Weight files (suffix in :data:`LFS_SUFFIXES`) get sha256-named blobs, other files the git blob
    sha1, as the Hub names them; snapshot entries are relative symlinks into ``blobs/`` and
    ``refs/main`` holds the commit. Without ``commit`` a deterministic 40-hex id is derived from
    ``repo_id`` and the file hashes. Re-installing is idempotent. Returns the snapshot directory.

    Use with ``HF_HOME=hf_home HF_HUB_OFFLINE=1`` set before ``huggingface_hub`` is imported, or
    in-process with ``cache_dir=str(hf_home / "hub"), local_files_only=True``.
    """
    folder = Path(folder)
    if "/" not in repo_id or repo_id.count("/") != 1:
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")
    if not folder.is_dir():
        raise NotADirectoryError(folder)

    files = sorted(p for p in folder.rglob("*") if p.is_file())
    hashed = [(p.relative_to(folder).as_posix(), _blob_name(p), p) for p in files]

    if commit is None:
        digest = hashlib.sha1(f"atelier-test-snapshot\0{repo_id}\0".encode())
        for rel, blob, _ in hashed:
            digest.update(f"{rel}\0{blob}\0".encode())
        commit = digest.hexdigest()
    if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
        raise ValueError(f"commit must be 40 lowercase hex characters, got {commit!r}")

    repo_dir = repo_cache_dir(hf_home, repo_id)
    blobs = repo_dir / "blobs"
    snapshot = repo_dir / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)

    for rel, blob, src in hashed:
        blob_path = blobs / blob
        if not blob_path.exists():
            tmp = blob_path.with_name(blob + ".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, blob_path)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob_path, link.parent))

    refs = repo_dir / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "main").write_text(commit)  # the Hub client writes no trailing newline
    return snapshot
