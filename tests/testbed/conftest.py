"""Fixtures of the LocalHub test bed (test_hub_server.py, test_hub_search.py).

Two repos served by the ``hub`` fixture (ids from the ``repo_id`` / ``big_repo_id`` fixtures, folders from
``repo_dir`` / ``big_repo_dir``), and huggingface_hub clients to point at it: huggingface_hub reads HF_ENDPOINT
and HF_HOME at import time, so every client-side check runs in a subprocess (``run_hf``) whose environment
(``hf_env``) points at the LocalHub started by the test. The helper fixtures return plain functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.hub_server import LocalHub

ROOT = Path(__file__).resolve().parents[2]
REPO = "atelier/tiny-files"
BIG_REPO = "atelier/big-weight"
CHUNK = 10 * 1024 * 1024  # huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE

_PRELUDE = '''
import json, sys, time, os
def emit(obj):
    print("RESULT " + json.dumps(obj, default=str), flush=True)
def describe(e):
    import httpx2
    from huggingface_hub import errors
    checks = {
        "RepositoryNotFoundError": errors.RepositoryNotFoundError,
        "GatedRepoError": errors.GatedRepoError,
        "RevisionNotFoundError": errors.RevisionNotFoundError,
        "EntryNotFoundError": errors.EntryNotFoundError,
        "RemoteEntryNotFoundError": errors.RemoteEntryNotFoundError,
        "LocalEntryNotFoundError": errors.LocalEntryNotFoundError,
        "HfHubHTTPError": errors.HfHubHTTPError,
        "RemoteProtocolError": httpx2.RemoteProtocolError,
        "ConnectError": httpx2.ConnectError,
    }
    status = getattr(getattr(e, "response", None), "status_code", None)
    cause = e.__cause__
    return {
        "type": type(e).__module__ + "." + type(e).__qualname__,
        "is": sorted(k for k, v in checks.items() if isinstance(e, v)),
        "status": status,
        "cause": None if cause is None else type(cause).__module__ + "." + type(cause).__qualname__,
        "cause_status": getattr(getattr(cause, "response", None), "status_code", None),
    }
'''


_SKIP_SLEEPS = """
import time as _time
SLEEPS = []
_time.sleep = SLEEPS.append
"""

_RECORDER = '''
import io, threading
from tqdm.auto import tqdm
BARS = []
class Recorder(tqdm):
    """Records constructor kwargs and every update(); renders into a StringIO."""
    def __init__(self, *args, **kwargs):
        self.rec = {"kwargs": {k: v for k, v in kwargs.items()}, "updates": []}
        BARS.append(self)
        kwargs["file"] = io.StringIO()
        super().__init__(*args, **kwargs)
    def update(self, n=1):
        self.rec["updates"].append(n)
        return super().update(n)
def bars_report():
    return [dict(kwargs=b.rec["kwargs"], updates=b.rec["updates"], n=b.n, total=b.total, desc=b.desc)
            for b in BARS]
'''


# ----------------------------------------------------------------------------------------------- helpers
def _env(hub: LocalHub, hf_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_", "HUGGINGFACE_"))}
    env.update(
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        PYTHONPATH=str(ROOT),
        TRANSFORMERS_VERBOSITY="error",
    )
    env.update(extra)
    return env


def _run(hub: LocalHub, hf_home: Path, code: str, *, recorder: bool = False, skip_sleeps: bool = False,
         timeout: float = 120, **env: str) -> dict:
    """Run ``code`` (dedented) in a fresh interpreter pointed at ``hub``; return what it emit()-ed.

    ``recorder`` defines the ``Recorder`` tqdm class and ``bars_report()``; ``skip_sleeps`` replaces
    ``time.sleep`` by ``SLEEPS.append`` so huggingface_hub's retry back-off is recorded, not waited.
    """
    script = _PRELUDE + (_RECORDER if recorder else "") + (_SKIP_SLEEPS if skip_sleeps else "")
    script += textwrap.dedent(code)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(hub, hf_home, **env),
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            result["_stderr"] = proc.stderr
            return result
    raise AssertionError(f"no RESULT (rc={proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")


def _calls(log: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Requests minus huggingface_hub's best-effort agent-registry fetch."""
    return [entry for entry in log if entry[1] != "/api/agent-harnesses"]


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _save_random_safetensors(path: Path, n_floats: int, seed: int) -> None:
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"weight": torch.randn(n_floats, generator=gen)}, str(path))


def _assert_snapshot(hf_home: Path, repo_id: str, sha: str, source: Path) -> Path:
    storage = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snap = storage / "snapshots" / sha
    assert (storage / "refs" / "main").read_text() == sha
    expected = _files(source)
    assert sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()) == sorted(expected)
    for rel, data in expected.items():
        target = snap / rel
        assert target.read_bytes() == data, rel
        blob = target.resolve()
        assert blob.parent == (storage / "blobs").resolve()
        is_lfs = rel.endswith(".safetensors")
        assert blob.name == (hashlib.sha256(data).hexdigest() if is_lfs else _git_sha1(data)), rel
    assert not list((storage / "blobs").glob("*.incomplete"))
    return snap


# ----------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hub_repo")
    (d / "config.json").write_text(json.dumps({"_class_name": "Tiny", "hidden": 8}))
    (d / "README.md").write_text("# tiny\n")
    (d / "scheduler").mkdir()
    (d / "scheduler" / "scheduler_config.json").write_text(json.dumps({"num_train_timesteps": 10}))
    (d / "notes" / "deep").mkdir(parents=True)
    (d / "notes" / "deep" / "info.txt").write_text("nested file\n")
    _save_random_safetensors(d / "text_encoder" / "model.safetensors", 300_000, seed=1)  # ~1.2 MB
    _save_random_safetensors(d / "unet" / "diffusion_pytorch_model.safetensors", 650_000, seed=2)  # ~2.6 MB
    return d


@pytest.fixture(scope="module")
def big_repo_dir(tmp_path_factory) -> Path:
    """One weight file just over huggingface_hub's 10 MiB read chunk, so a cut after it can resume."""
    d = tmp_path_factory.mktemp("hub_big")
    (d / "config.json").write_text("{}")
    _save_random_safetensors(d / "model.safetensors", (CHUNK + 600_000) // 4, seed=3)
    return d


@pytest.fixture
def hub(repo_dir, big_repo_dir):
    """A started LocalHub serving ``repo_dir`` as ``repo_id`` and ``big_repo_dir`` as ``big_repo_id``."""
    t0 = time.perf_counter()
    with LocalHub() as server:
        assert time.perf_counter() - t0 < 5.0  # a thread and a socket: slow only when something is wrong
        server.add_repo(REPO, repo_dir)
        server.add_repo(BIG_REPO, big_repo_dir)
        yield server


@pytest.fixture
def repo_id() -> str:
    """The id ``hub`` serves ``repo_dir`` as."""
    return REPO


@pytest.fixture
def big_repo_id() -> str:
    """The id ``hub`` serves ``big_repo_dir`` as."""
    return BIG_REPO


@pytest.fixture
def hf_chunk_size() -> int:
    """huggingface_hub's download read size: byte progress arrives per chunk, resumes start past one."""
    return CHUNK


@pytest.fixture
def run_hf():
    """``run_hf(hub, hf_home, code, *, recorder=False, skip_sleeps=False, timeout=120, **env) -> dict``."""
    return _run


@pytest.fixture
def hf_env():
    """``hf_env(hub, hf_home, **extra) -> dict``: the environment of a huggingface_hub client of ``hub``."""
    return _env


@pytest.fixture
def hub_calls():
    """``hub_calls(log)``: requests minus huggingface_hub's best-effort agent-registry fetch."""
    return _calls


@pytest.fixture
def repo_files():
    """``repo_files(folder) -> {posix path: bytes}`` of every file under ``folder``."""
    return _files


@pytest.fixture
def git_sha1():
    """``git_sha1(data) -> str``: the git blob id of ``data``."""
    return _git_sha1


@pytest.fixture
def assert_snapshot():
    """``assert_snapshot(hf_home, repo_id, sha, source) -> snapshot dir``: ``source`` laid out in the HF cache."""
    return _assert_snapshot


@pytest.fixture
def save_random_safetensors():
    """``save_random_safetensors(path, n_floats, seed)``: one random ``weight`` tensor."""
    return _save_random_safetensors
