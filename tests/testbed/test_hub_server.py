"""LocalHub (tests/support/hub_server.py) against the real huggingface_hub 2.4.0 / diffusers download code.

huggingface_hub reads HF_ENDPOINT and HF_HOME at import time, so every client-side check runs in a
subprocess whose environment points at the LocalHub started by the test.

Protocol facts pinned down by these tests (huggingface_hub 2.4.0, httpx2 transport):

* First request of a fresh process+HF_HOME: ``GET /api/agent-harnesses`` (best-effort agent detection for
  the user-agent; cached in ``$HF_HOME/.agent_harnesses.json`` for 24 h; skipped when HF_HUB_OFFLINE=1).
* ``snapshot_download(repo_id)``: ``GET /api/models/{repo}/revision/main`` (repo_info, no retry) ->
  ``GET /api/models/{repo}/tree/{sha}?recursive=true&expand=false`` (skipped when
  ``$HF_HOME/hub/models--x--y/trees/{sha}.json`` is already cached) -> per file, on up to 8 worker
  threads, ``HEAD /{repo}/resolve/{sha}/{file}`` then ``GET`` of the same URL. The HEAD must carry
  ``X-Repo-Commit`` and an ``ETag`` (``X-Linked-Etag`` wins when present; it names the blob);
  size comes from ``X-Linked-Size`` or ``Content-Length``.
* Byte progress with ``tqdm_class=Cls``: Cls is instantiated three times, in this order:
  1. ``Cls(desc="Downloading bytes", total=0, initial=0, unit="B", unit_scale=True, bar_format=...)``:
     network bytes; ``.total`` is grown by attribute assignment, finally set to ``.n``; desc becomes
     "Download complete" via ``set_description_str``. Never closed.
  2. ``Cls(desc="Reconstructing (incomplete total...)", total=0, initial=0, unit="B", unit_scale=True,
     bar_format=...)``: bytes written; ``.total`` grows by each file's size (attribute assignment +
     ``refresh()``) when that file's GET starts; desc finally "Reconstruction complete". Never closed.
  3. ``Cls(desc="Fetching N files", total=N)``: ``update(1)`` per finished file; used as a context store.
  (If Cls subclasses ``huggingface_hub.utils.tqdm``, bars 1-2 also get ``name=`` and ``disable=``.)
  Byte updates arrive per 10 MiB chunk (``DOWNLOAD_CHUNK_SIZE``): a small file yields one update.
  Only files actually fetched count; sum(updates) of bars 1 and 2 == sum of downloaded file sizes.
* Interrupted body: ``http_get`` catches ``httpx2.RemoteProtocolError`` and retries itself (1 s sleep,
  5 retries, counter reset whenever a chunk arrives), so one cut does NOT surface to the caller. The retry
  sends ``Range: bytes=N-`` only if N>0 bytes were already written, i.e. only past the first 10 MiB
  chunk; a cut inside the first 10 MiB restarts with a plain GET. 6 cuts in a row without progress
  raise ``httpx2.RemoteProtocolError`` out of ``snapshot_download``.
* ``.incomplete`` files: each attempt writes ``blobs/<etag>.<8 hex>.incomplete`` (process-unique) and
  deletes it on failure; nothing is resumed across calls: the next ``snapshot_download`` re-GETs the file
  from byte 0 (files finished earlier are reused from the cache without any request).
* Unreachable Hub, nothing cached: ``snapshot_download`` raises ``LocalEntryNotFoundError`` at once
  (``__cause__`` is ``httpx2.ConnectError`` when refused, ``HfHubHTTPError`` status 503 on 503).
  ``hf_hub_download`` in the same situation retries the HEAD with backoff (sleeps 1,2,4,8,8 s) before
  raising ``LocalEntryNotFoundError``.
* Unreachable Hub with the snapshot cached: ``snapshot_download`` returns the cached snapshot.
  ``HF_HUB_OFFLINE=1``: returns the cached snapshot and sends no request at all.
* ``hf_hub_download(..., tqdm_class=Cls)``: one ``Cls(unit="B", unit_scale=True, total=size, initial=0,
  desc=<filename from Content-Disposition>)`` per file, closed at the end.
* ``DiffusionPipeline.from_pretrained(repo)``: ``GET /api/models/{repo}`` (resolve_revision) ->
  ``GET /api/models/{repo}/revision/main`` (model_info) -> HEAD+GET ``model_index.json`` at the sha ->
  ``GET /api/models/{repo}/tree/{sha}`` -> HEAD+GET of each allowed file at the sha.
* ``HfApi().list_models(search=, sort="downloads", limit=N, expand=[...])``: one ``GET /api/models`` with
  ``search``, ``sort``, ``limit`` and ``expand`` repeated once per field (no ``direction``: the Hub sorts
  descending); ``full=True`` is sent as ``full=true``; the client stops after ``limit`` entries. The list
  API's siblings carry file names only (``size`` is None); ``usedStorage`` is the only size it gives.
* Token: missing -> ``RepositoryNotFoundError`` (401 + X-Error-Code RepoNotFound) or ``GatedRepoError``
  (X-Error-Code GatedRepo); wrong token -> ``HfHubHTTPError`` status 401; ``HF_TOKEN`` set -> works.
"""

from __future__ import annotations

import hashlib
import http.client
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
    t0 = time.perf_counter()
    with LocalHub() as server:
        assert time.perf_counter() - t0 < 1.0
        server.add_repo(REPO, repo_dir)
        server.add_repo(BIG_REPO, big_repo_dir)
        yield server


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


# ----------------------------------------------------------------------------------------------- raw protocol
def test_resolve_headers_ranges_and_errors(hub, repo_dir):
    sha = hub.add_repo(REPO, repo_dir)
    assert sha == hub.add_repo(REPO, repo_dir) and len(sha) == 40  # deterministic
    host, port = hub.endpoint.removeprefix("http://").split(":")
    data = (repo_dir / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()

    def request(method, path, headers=None):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp, body

    url = f"/{REPO}/resolve/main/unet/diffusion_pytorch_model.safetensors"
    resp, body = request("HEAD", url)
    assert resp.status == 200 and body == b""
    assert resp.headers["X-Repo-Commit"] == sha
    assert resp.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert resp.headers["X-Linked-Size"] == resp.headers["Content-Length"] == str(len(data))
    assert not [k for k in resp.headers if k.lower().startswith("x-xet")]

    resp, body = request("HEAD", f"/{REPO}/resolve/{sha}/config.json")
    cfg = (repo_dir / "config.json").read_bytes()
    assert resp.status == 200 and resp.headers["ETag"] == f'"{_git_sha1(cfg)}"' and "X-Linked-Etag" not in resp.headers

    resp, body = request("GET", url, {"Range": "bytes=100-"})
    assert resp.status == 206 and body == data[100:]
    assert resp.headers["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    resp, body = request("GET", url, {"Range": "bytes=5-9"})
    assert resp.status == 206 and body == data[5:10]
    resp, body = request("GET", url, {"Range": f"bytes={len(data)}-"})
    assert resp.status == 416

    hub.fail_once(REPO, "unet/diffusion_pytorch_model.safetensors", after_bytes=1000)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", url)
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as exc:
        resp.read()
    assert len(exc.value.partial) == 1000
    conn.close()
    resp, body = request("GET", url)
    assert resp.status == 200 and body == data  # only once

    for path, code in [
        ("/nobody/nothing/resolve/main/x.json", "RepoNotFound"),
        (f"/{REPO}/resolve/nope/config.json", "RevisionNotFound"),
        (f"/{REPO}/resolve/main/missing.json", "EntryNotFound"),
        ("/api/models/nobody/nothing", "RepoNotFound"),
        (f"/api/models/{REPO}/revision/nope", "RevisionNotFound"),
    ]:
        resp, _ = request("GET", path)
        assert (resp.status, resp.headers["X-Error-Code"]) == (404, code), path
    assert resp.headers.get("X-Repo-Commit") is None
    resp, _ = request("HEAD", f"/{REPO}/resolve/main/missing.json")
    assert resp.headers["X-Repo-Commit"] == sha  # lets huggingface_hub cache the miss in .no_exist

    resp, body = request("GET", f"/api/models/{REPO}/tree/main/notes")
    assert resp.status == 200
    assert [(e["type"], e["path"]) for e in json.loads(body)] == [("directory", "notes/deep")]
    assert hub.unknown_requests == []
    request("GET", "/api/spaces/x/y")
    assert hub.unknown_requests == [("GET", "/api/spaces/x/y")]


# ---------------------------------------------------------------------------------- 1. snapshot layout + api
def test_snapshot_download_and_api_calls(hub, repo_dir, tmp_path):
    sha = hub.add_repo(REPO, repo_dir)
    result = _run(
        hub,
        tmp_path / "hf",
        f"""
        from huggingface_hub import (HfApi, snapshot_download, hf_hub_download, model_info, list_repo_files,
                                     list_repo_tree, get_paths_info)
        out = {{}}
        out["path"] = snapshot_download("{REPO}")
        info = model_info("{REPO}")
        out["sha"], out["siblings"] = info.sha, sorted(s.rfilename for s in info.siblings)
        full = model_info("{REPO}", files_metadata=True)
        out["lfs"] = sorted(s.rfilename for s in full.siblings if s.lfs is not None)
        out["files"] = sorted(list_repo_files("{REPO}"))
        out["top"] = sorted((type(e).__name__, e.path) for e in list_repo_tree("{REPO}"))
        out["paths"] = sorted(e.path for e in get_paths_info("{REPO}", ["config.json", "unet"]))
        out["hf_hub_download"] = hf_hub_download("{REPO}", "notes/deep/info.txt")
        out["exists"] = [HfApi().file_exists("{REPO}", "config.json"), HfApi().file_exists("{REPO}", "nope.txt"),
                         HfApi().repo_exists("{REPO}"), HfApi().repo_exists("nobody/nothing")]
        errors = {{}}
        for key, call in [
            ("missing_file", lambda: hf_hub_download("{REPO}", "missing.json")),
            ("missing_repo", lambda: snapshot_download("nobody/nothing")),
            ("missing_revision", lambda: snapshot_download("{REPO}", revision="v9")),
        ]:
            try:
                call()
                errors[key] = None
            except Exception as e:
                errors[key] = describe(e)
        out["errors"] = errors
        emit(out)
        """,
    )
    hf_home = tmp_path / "hf"
    snap = _assert_snapshot(hf_home, REPO, sha, repo_dir)
    assert result["path"] == str(snap)
    names = sorted(_files(repo_dir))
    assert result["sha"] == sha and result["siblings"] == names and result["files"] == names
    assert result["lfs"] == [n for n in names if n.endswith(".safetensors")]
    assert result["top"] == [
        ["RepoFile", "README.md"], ["RepoFile", "config.json"], ["RepoFolder", "notes"],
        ["RepoFolder", "scheduler"], ["RepoFolder", "text_encoder"], ["RepoFolder", "unet"],
    ]
    assert result["paths"] == ["config.json", "unet"]
    assert result["hf_hub_download"] == str(snap / "notes" / "deep" / "info.txt")
    assert result["exists"] == [True, False, True, False]
    errors = result["errors"]
    assert "RemoteEntryNotFoundError" in errors["missing_file"]["is"]
    assert errors["missing_repo"]["type"] == "huggingface_hub.errors.RepositoryNotFoundError"
    assert errors["missing_revision"]["type"] == "huggingface_hub.errors.RevisionNotFoundError"
    assert (hf_home / "hub" / f"models--{REPO.replace('/', '--')}" / ".no_exist" / sha / "missing.json").exists()

    log = _calls(hub.log_snapshot())
    assert log[0] == ("GET", f"/api/models/{REPO}/revision/main", "")
    assert log[1] == ("GET", f"/api/models/{REPO}/tree/{sha}", "")
    for name in names:
        assert ("HEAD", f"/{REPO}/resolve/{sha}/{name}", "") in log
        assert ("GET", f"/{REPO}/resolve/{sha}/{name}", "") in log
    assert hub.unknown_requests == []


# ----------------------------------------------------------------------------------------------- 2. progress
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


def test_progress_reported_to_tqdm_class(hub, repo_dir, tmp_path):
    result = _run(
        hub,
        tmp_path / "hf",
        recorder=True,
        code=f"""
        from huggingface_hub import snapshot_download, hf_hub_download
        snapshot_download("{REPO}", tqdm_class=Recorder)
        snapshot_bars = bars_report()
        BARS.clear()
        hf_hub_download("{REPO}", "unet/diffusion_pytorch_model.safetensors", force_download=True,
                        tqdm_class=Recorder)
        emit({{"bars": snapshot_bars, "single": bars_report()}})
        """,
    )
    sizes = {k: len(v) for k, v in _files(repo_dir).items()}
    total = sum(sizes.values())
    transfer, reconstruct, files = result["bars"]
    assert transfer["kwargs"]["desc"] == "Downloading bytes"
    assert reconstruct["kwargs"]["desc"] == "Reconstructing (incomplete total...)"
    for bar in (transfer, reconstruct):
        assert {k: bar["kwargs"][k] for k in ("total", "initial", "unit", "unit_scale")} == {
            "total": 0, "initial": 0, "unit": "B", "unit_scale": True}
        assert "bar_format" in bar["kwargs"] and "name" not in bar["kwargs"]
        assert sum(bar["updates"]) == bar["n"] == total
        assert sorted(bar["updates"]) == sorted(sizes.values())  # < 10 MiB each: one update per file
    assert reconstruct["total"] == total and transfer["total"] == total
    assert transfer["desc"] == "Download complete"
    assert reconstruct["desc"].startswith("Reconstruction complete")  # via set_description(): "...: "
    assert files["kwargs"] == {"desc": f"Fetching {len(sizes)} files", "total": len(sizes)}
    assert files["updates"] == [1] * len(sizes) and files["n"] == len(sizes)

    # hf_hub_download(tqdm_class=...) creates one bar per file, desc from the Content-Disposition filename.
    (single,) = result["single"]
    size = sizes["unet/diffusion_pytorch_model.safetensors"]
    assert single["kwargs"] == {"unit": "B", "unit_scale": True, "total": size, "initial": 0,
                                "desc": "diffusion_pytorch_model.safetensors"}
    assert sum(single["updates"]) == single["n"] == size


# ----------------------------------------------------------------------------------------------- 3. interruption
def test_cut_inside_first_chunk_is_retried_internally_from_zero(hub, repo_dir, tmp_path):
    sha = hub.add_repo(REPO, repo_dir)
    name = "unet/diffusion_pytorch_model.safetensors"
    hub.fail_once(REPO, name, after_bytes=200_000)
    result = _run(hub, tmp_path / "hf", recorder=True, skip_sleeps=True, code=f"""
        from huggingface_hub import snapshot_download
        path = snapshot_download("{REPO}", tqdm_class=Recorder)
        emit({{"path": path, "bars": bars_report(), "sleeps": SLEEPS}})
        """)
    assert result["sleeps"] == [1]
    _assert_snapshot(tmp_path / "hf", REPO, sha, repo_dir)
    gets = [e for e in hub.log_snapshot() if e[:2] == ("GET", f"/{REPO}/resolve/{sha}/{name}")]
    assert gets == [("GET", f"/{REPO}/resolve/{sha}/{name}", "")] * 2  # re-GET without Range
    assert "Trying to resume download" in result["_stderr"]
    total = sum(len(v) for v in _files(repo_dir).values())
    assert sum(result["bars"][1]["updates"]) == result["bars"][1]["total"] == total


def test_cut_after_first_chunk_resumes_with_range(hub, big_repo_dir, tmp_path):
    sha = hub.add_repo(BIG_REPO, big_repo_dir)
    size = (big_repo_dir / "model.safetensors").stat().st_size
    hub.fail_once(BIG_REPO, "model.safetensors", after_bytes=CHUNK + 250_000)
    result = _run(hub, tmp_path / "hf", recorder=True, skip_sleeps=True, code=f"""
        from huggingface_hub import snapshot_download
        path = snapshot_download("{BIG_REPO}", tqdm_class=Recorder)
        emit({{"path": path, "bars": bars_report(), "sleeps": SLEEPS}})
        """)
    assert result["sleeps"] == [1]
    _assert_snapshot(tmp_path / "hf", BIG_REPO, sha, big_repo_dir)
    gets = [e for e in hub.log_snapshot() if e[:2] == ("GET", f"/{BIG_REPO}/resolve/{sha}/model.safetensors")]
    assert [g[2] for g in gets] == ["", f"bytes={CHUNK}-"]
    reconstruct = result["bars"][1]
    config_size = (big_repo_dir / "config.json").stat().st_size
    assert sorted(reconstruct["updates"]) == sorted([config_size, CHUNK, size - CHUNK])
    assert reconstruct["total"] == size + config_size  # the retry reuses the bar: total counted once


def test_repeated_cuts_raise_then_next_call_downloads_from_scratch(hub, repo_dir, tmp_path):
    sha = hub.add_repo(REPO, repo_dir)
    name = "text_encoder/model.safetensors"
    hub.fail_once(REPO, name, after_bytes=5_000, times=6)
    first = _run(hub, tmp_path / "hf", skip_sleeps=True, code=f"""
        from huggingface_hub import snapshot_download
        try:
            snapshot_download("{REPO}")  # 8 workers >= 7 files: the other files all start and finish
            emit({{"error": None}})
        except Exception as e:
            import glob
            emit({{"error": describe(e), "sleeps": SLEEPS,
                   "incomplete": glob.glob(os.environ["HF_HOME"] + "/hub/**/*.incomplete", recursive=True)}})
        """)
    assert first["error"]["type"] == "httpx2.RemoteProtocolError"
    assert first["sleeps"] == [1] * 5 and first["incomplete"] == []
    url = f"/{REPO}/resolve/{sha}/{name}"
    assert [e for e in hub.log_snapshot() if e[1] == url and e[0] == "GET"] == [("GET", url, "")] * 6

    hub.clear_log()
    _run(hub, tmp_path / "hf", f"""
        from huggingface_hub import snapshot_download
        emit({{"path": snapshot_download("{REPO}")}})
        """)
    _assert_snapshot(tmp_path / "hf", REPO, sha, repo_dir)
    # Only the failed file is fetched again, from byte 0; the tree listing comes from the on-disk cache.
    assert _calls(hub.log_snapshot()) == [
        ("GET", f"/api/models/{REPO}/revision/main", ""),
        ("HEAD", url, ""),
        ("GET", url, ""),
    ]


# ----------------------------------------------------------------------------------------------- 4. offline
def test_unreachable_hub_errors(hub, tmp_path):
    code = f"""
        from huggingface_hub import snapshot_download, hf_hub_download
        out = {{}}
        t0 = time.perf_counter()
        try:
            snapshot_download("{REPO}")
        except Exception as e:
            out["snapshot"] = describe(e)
        out["snapshot_seconds"] = time.perf_counter() - t0
        out["snapshot_sleeps"] = list(SLEEPS)
        try:
            hf_hub_download("{REPO}", "config.json")
        except Exception as e:
            out["file"] = describe(e)
        out["file_sleeps"] = SLEEPS[len(out["snapshot_sleeps"]):]
        emit(out)
    """
    endpoint = hub.endpoint
    hub.set_offline(True)  # connection refused
    refused = _run(hub, tmp_path / "hf1", code, skip_sleeps=True)
    assert hub.log_snapshot() == []
    hub.set_offline(True, mode="503")
    unavailable = _run(hub, tmp_path / "hf2", code, skip_sleeps=True)
    assert {e[0] for e in hub.log_snapshot()} == {"GET", "HEAD"}
    hub.set_offline(False)
    hub.clear_log()
    back = _run(hub, tmp_path / "hf3", f"""
        from huggingface_hub import snapshot_download
        emit({{"path": snapshot_download("{REPO}")}})
    """)
    assert Path(back["path"]).parent.name == "snapshots" and hub.endpoint == endpoint
    assert any(e[0] == "GET" and "/resolve/" in e[1] for e in hub.log_snapshot())  # back online, same port

    for res, cause in ((refused, "httpx2.ConnectError"), (unavailable, "huggingface_hub.errors.HfHubHTTPError")):
        assert res["snapshot"]["type"] == "huggingface_hub.errors.LocalEntryNotFoundError"
        assert res["snapshot"]["cause"] == cause
        assert res["snapshot_sleeps"] == [] and res["snapshot_seconds"] < 5
        assert res["file"]["type"] == "huggingface_hub.errors.LocalEntryNotFoundError"
        assert res["file_sleeps"] == [1, 2, 4, 8, 8]  # hf_hub_download retries the HEAD with backoff
    assert unavailable["snapshot"]["cause_status"] == 503


def test_cached_snapshot_survives_outage_and_hf_hub_offline(hub, repo_dir, tmp_path):
    sha = hub.add_repo(REPO, repo_dir)
    hf_home = tmp_path / "hf"
    code = f"""
        from huggingface_hub import snapshot_download
        emit({{"path": snapshot_download("{REPO}")}})
    """
    first = _run(hub, hf_home, code)["path"]
    _assert_snapshot(hf_home, REPO, sha, repo_dir)

    before = hub.log_snapshot()
    assert _run(hub, hf_home, code, HF_HUB_OFFLINE="1")["path"] == first
    assert hub.log_snapshot() == before  # no request at all

    hub.set_offline(True)
    assert _run(hub, hf_home, code)["path"] == first
    hub.set_offline(True, mode="503")
    assert _run(hub, hf_home, code)["path"] == first
    assert _calls(hub.log_snapshot()[len(before):]) == [("GET", f"/api/models/{REPO}/revision/main", "")]


# ----------------------------------------------------------------------------------------------- 5. token
def test_token_required(hub, repo_dir, tmp_path):
    sha = hub.add_repo(REPO, repo_dir)
    hub.require_token("hf_local_secret")
    code = f"""
        from huggingface_hub import snapshot_download
        try:
            emit({{"path": snapshot_download("{REPO}")}})
        except Exception as e:
            emit({{"error": describe(e)}})
    """
    missing = _run(hub, tmp_path / "hf", code)["error"]
    wrong = _run(hub, tmp_path / "hf", code, HF_TOKEN="hf_wrong")["error"]
    hub.require_token("hf_local_secret", gated=True)
    gated = _run(hub, tmp_path / "hf", code)["error"]
    ok = _run(hub, tmp_path / "hf", code, HF_TOKEN="hf_local_secret")

    assert missing["type"] == "huggingface_hub.errors.RepositoryNotFoundError" and missing["status"] == 401
    assert wrong["type"] == "huggingface_hub.errors.HfHubHTTPError" and wrong["status"] == 401
    assert gated["type"] == "huggingface_hub.errors.GatedRepoError" and gated["status"] == 401
    assert ok["path"].endswith(sha)
    _assert_snapshot(tmp_path / "hf", REPO, sha, repo_dir)


# ----------------------------------------------------------------------------------------------- 6. diffusers
def _build_tiny_sd_pipeline(out: Path):
    """The shared tiny SD1.5 test model, saved to ``out`` and loaded back for comparison."""
    from diffusers import StableDiffusionPipeline

    from tests.support.tiny_models import save_sd15_folder

    save_sd15_folder(out)
    return StableDiffusionPipeline.from_pretrained(str(out), local_files_only=True)


def _pipeline_child(out_dir: str, repo_id: str) -> None:
    """Subprocess body: build + save the pipeline, wait for the parent to serve it, load it from the hub."""
    import torch

    built = _build_tiny_sd_pipeline(Path(out_dir))
    print("BUILT", flush=True)
    sys.stdin.readline()  # parent has called add_repo

    from diffusers import DiffusionPipeline

    loaded = DiffusionPipeline.from_pretrained(repo_id)
    same = {}
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(built, name).state_dict(), getattr(loaded, name).state_dict()
        same[name] = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    image = loaded("a cat", num_inference_steps=2, height=32, width=32, output_type="np",
                   generator=torch.Generator().manual_seed(0)).images
    print("RESULT " + json.dumps({
        "class": type(loaded).__name__,
        "same": same,
        "tokenizer": loaded.tokenizer("a cat").input_ids == built.tokenizer("a cat").input_ids,
        "scheduler": type(loaded.scheduler).__name__,
        "image": list(image.shape),
        "cache": str(Path(loaded.unet.config._name_or_path)),
    }), flush=True)


def test_diffusers_from_pretrained_through_hub(hub, tmp_path):
    folder = tmp_path / "tiny-sd"
    hf_home = tmp_path / "hf"
    env = _env(hub, hf_home, DIFFUSERS_VERBOSITY="error", HF_HUB_DISABLE_XET="0")
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "from tests.testbed.test_hub_server import _pipeline_child; "
         f"_pipeline_child({str(folder)!r}, 'atelier/tiny-sd')"],
        env=env, cwd=str(ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        if line.strip() != "BUILT":
            proc.kill()
            raise AssertionError(f"child failed to build: {line}{proc.stdout.read()}{proc.stderr.read()}")
        sha = hub.add_repo("atelier/tiny-sd", folder)
        hub.clear_log()
        out, err = proc.communicate("go\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    results = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert results, f"rc={proc.returncode}\n{out}\n{err}"
    res = json.loads(results[-1][len("RESULT "):])
    assert res["class"] == "StableDiffusionPipeline"
    assert res["same"] == {"unet": True, "vae": True, "text_encoder": True}
    assert res["tokenizer"] and res["scheduler"] == "PNDMScheduler" and res["image"] == [1, 32, 32, 3]

    _assert_snapshot(hf_home, "atelier/tiny-sd", sha, folder)
    log = _calls(hub.log_snapshot())
    # resolve_revision (revision=None) -> model_info(ResolvedRevision "main") -> model_index.json at the sha
    # -> snapshot_download(ResolvedRevision): no repo_info, tree listing at the sha, HEAD+GET per allowed file.
    assert log[:5] == [
        ("GET", "/api/models/atelier/tiny-sd", ""),
        ("GET", "/api/models/atelier/tiny-sd/revision/main", ""),
        ("HEAD", f"/atelier/tiny-sd/resolve/{sha}/model_index.json", ""),
        ("GET", f"/atelier/tiny-sd/resolve/{sha}/model_index.json", ""),
        ("GET", f"/api/models/atelier/tiny-sd/tree/{sha}", ""),
    ]
    downloaded = {e[1].split(f"/resolve/{sha}/", 1)[1] for e in log if e[0] == "GET" and "/resolve/" in e[1]}
    assert downloaded == set(_files(folder))
    assert hub.unknown_requests == []


# ----------------------------------------------------------------------------------------------- 7. search
def test_model_search_as_list_models_asks(hub, repo_dir, tmp_path):
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "README.md").write_text("---\nlicense: openrail++\ntags:\n- lora\n- stable-diffusion\n"
                                    "library_name: diffusers\npipeline_tag: text-to-image\n---\n# A LoRA\n")
    _save_random_safetensors(lora / "pixel.safetensors", 1000, seed=4)
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    hub.add_repo("someone/pixel-lora", lora, downloads=500, likes=7)
    hub.add_repo("atelier/tiny-pipe", pipe, downloads=900, likes=1)
    hub.add_repo(REPO, repo_dir, downloads=20)
    hub.clear_log()
    result = _run(hub, tmp_path / "hf", """
        from huggingface_hub import HfApi
        api = HfApi()
        fields = ["downloads", "likes", "cardData", "tags", "pipeline_tag", "library_name", "siblings", "usedStorage"]
        def row(m):
            return {"id": m.id, "downloads": m.downloads, "likes": m.likes, "tags": m.tags,
                    "pipeline_tag": m.pipeline_tag, "library": m.library_name, "used": m.used_storage,
                    "license": m.card_data.license if m.card_data else None,
                    "files": None if m.siblings is None else [s.rfilename for s in m.siblings],
                    "sizes": None if m.siblings is None else [s.size for s in m.siblings]}
        emit({
            "expanded": [row(m) for m in api.list_models(search="PI", sort="downloads", limit=5, expand=fields)],
            "default": [row(m) for m in api.list_models(search="atelier")],
            "full": [row(m) for m in api.list_models(search="lora", full=True)],
            "limited": [m.id for m in api.list_models(sort="likes", limit=2)],
            "filtered": [m.id for m in api.list_models(filter="lora")],
            "none": [m.id for m in api.list_models(search="nothing-like-this")],
        })
    """)
    expanded = result["expanded"]
    assert [m["id"] for m in expanded] == ["atelier/tiny-pipe", "someone/pixel-lora"]  # id contains "pi"
    pipe_row, lora_row = expanded
    assert pipe_row["library"] == "diffusers" and pipe_row["pipeline_tag"] == "text-to-image"
    assert "diffusers:StableDiffusionPipeline" in pipe_row["tags"] and pipe_row["files"] == ["model_index.json"]
    assert lora_row == {
        "id": "someone/pixel-lora", "downloads": 500, "likes": 7, "library": "diffusers",
        "pipeline_tag": "text-to-image", "license": "openrail++",
        "tags": ["lora", "stable-diffusion", "safetensors", "text-to-image", "license:openrail++"],
        "used": sum(p.stat().st_size for p in lora.iterdir()),
        "files": ["README.md", "pixel.safetensors"], "sizes": [None, None],  # the list API gives no file sizes
    }
    # Without expand: the Hub's default list fields, no files, no card.
    assert [m["id"] for m in result["default"]] == ["atelier/big-weight", "atelier/tiny-files", "atelier/tiny-pipe"]
    assert all(m["files"] is None and m["license"] is None and m["used"] is None for m in result["default"])
    assert result["full"][0]["files"] == ["README.md", "pixel.safetensors"]
    assert result["limited"] == ["someone/pixel-lora", "atelier/tiny-pipe"]
    assert result["filtered"] == ["someone/pixel-lora"] and result["none"] == []

    # What huggingface_hub 2.4 sends: search, sort, limit, expand (repeated); no direction.
    first = hub.search_log[0]
    assert first == {"search": ["PI"], "sort": ["downloads"], "limit": ["5"], "expand": [
        "downloads", "likes", "cardData", "tags", "pipeline_tag", "library_name", "siblings", "usedStorage"]}
    assert hub.search_log[2] == {"search": ["lora"], "full": ["true"]}
    assert hub.unknown_requests == []
