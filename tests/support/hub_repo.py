"""What the local Hub serves: repo snapshots of folders, hashed as the Hub names blobs.

Shared by :mod:`tests.support.hub_server` (the HTTP side) and :mod:`tests.support.hf_cache`
(laying folders into the HF cache), so both agree on which files are LFS and on blob ids.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Files with these suffixes are served like Git LFS files (sha256 ETag, X-Linked-* headers).
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".ckpt",
    ".pt",
    ".pth",
    ".onnx",
    ".msgpack",
    ".h5",
    ".gguf",
    ".pkl",
    ".npz",
)
#: Files at least this large are LFS files too (the real Hub refuses larger plain git blobs).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024

FIXED_DATE = "2024-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class RepoFile:
    path: str  # posix path inside the repo
    disk_path: Path
    size: int
    blob_id: str  # git blob sha1 (of the content, or of the LFS pointer for LFS files)
    sha256: str | None  # set for LFS files
    pointer_size: int | None  # set for LFS files

    @property
    def is_lfs(self) -> bool:
        return self.sha256 is not None

    @property
    def etag(self) -> str:
        return self.sha256 if self.sha256 is not None else self.blob_id


@dataclass
class Snapshot:
    repo_id: str
    revision: str
    commit: str
    files: dict[str, RepoFile]
    dirs: dict[str, str] = field(default_factory=dict)  # dir path -> pseudo tree oid




def git_blob_sha1_stream(data_size: int, chunks) -> str:
    h = hashlib.sha1(f"blob {data_size}\0".encode())
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _read_chunks(path: Path, chunk_size: int = 1 << 20):
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            if not chunk:
                return
            yield chunk


def _hash_file(path: Path, lfs: bool) -> tuple[int, str, str | None, int | None]:
    size = path.stat().st_size
    if not lfs:
        return size, git_blob_sha1_stream(size, _read_chunks(path)), None, None
    sha256 = hashlib.sha256()
    for chunk in _read_chunks(path):
        sha256.update(chunk)
    digest = sha256.hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {size}\n".encode()
    return size, git_blob_sha1_stream(len(pointer), [pointer]), digest, len(pointer)


def is_lfs(rel_path: str, size: int) -> bool:
    return rel_path.lower().endswith(LFS_SUFFIXES) or size >= LFS_SIZE_THRESHOLD


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """Return (start, end_inclusive), None when the header is absent/ignored, or "invalid" (416)."""
    header = header.strip()
    if not header:
        return None
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", header)
    if m is None:  # multi-range or garbage: ignore like many servers do (200 full body)
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return "invalid"
    if first == "":  # suffix range: last N bytes
        n = int(last)
        if n == 0:
            return "invalid"
        return max(size - n, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return "invalid"
    return start, min(end, size - 1)


def git_blob_sha1(data: bytes) -> str:
    """The git object id of ``data`` as a blob: ``sha1(b"blob <len>\\0" + data)``."""
    return git_blob_sha1_stream(len(data), [data])


def build_snapshot(repo_id: str, folder: Path, revision: str) -> Snapshot:
    """Hash every file under ``folder`` into a snapshot with a deterministic commit sha
    (sha1 over repo id, revision and the files' git blob ids)."""
    if not folder.is_dir():
        raise NotADirectoryError(folder)
    if not re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", repo_id):
        raise ValueError(f"invalid repo_id {repo_id!r}")
    files: dict[str, RepoFile] = {}
    for disk_path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = disk_path.relative_to(folder).as_posix()
        if rel.startswith(".git/") or "/.git/" in rel:
            continue
        size = disk_path.stat().st_size
        size, blob_id, sha256, pointer_size = _hash_file(disk_path, is_lfs(rel, size))
        files[rel] = RepoFile(rel, disk_path, size, blob_id, sha256, pointer_size)
    h = hashlib.sha1(f"atelier-localhub\0{repo_id}\0{revision}\0".encode())
    for rel, f in files.items():
        h.update(f"{rel}\0{f.blob_id}\n".encode())
    commit = h.hexdigest()
    dirs: dict[str, str] = {}
    for rel in files:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs[d] = hashlib.sha1(f"tree\0{commit}\0{d}".encode()).hexdigest()
    return Snapshot(repo_id, revision, commit, files, dirs)


def last_commit(snap: Snapshot) -> dict:
    return {"id": snap.commit, "title": "LocalHub snapshot", "date": FIXED_DATE}


def file_entry(snap: Snapshot, f: RepoFile, expand: bool) -> dict:
    e: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size, "path": f.path}
    if f.is_lfs:
        e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
    if expand:
        e["lastCommit"] = last_commit(snap)
        e["securityFileStatus"] = {"status": "safe", "avScan": {"virusFound": False, "virusNames": None},
                                   "pickleImportScan": None}
    return e


def dir_entry(snap: Snapshot, d: str, expand: bool) -> dict:
    e: dict[str, Any] = {"type": "directory", "oid": snap.dirs[d], "size": 0, "path": d}
    if expand:
        e["lastCommit"] = last_commit(snap)
    return e


def tree_entries(snap: Snapshot, sub: str, recursive: bool, expand: bool) -> list[dict]:
    """Entries of a tree listing, directories first, as the Hub's tree API returns them."""
    prefix = f"{sub}/" if sub else ""
    depth = prefix.count("/")
    out: list[dict] = []
    for d in sorted(snap.dirs):
        if d.startswith(prefix) and (recursive or d.count("/") == depth):
            out.append(dir_entry(snap, d, expand))
    for p in sorted(snap.files):
        if p.startswith(prefix) and (recursive or p.count("/") == depth):
            out.append(file_entry(snap, snap.files[p], expand))
    return out
