"""LocalHub (tests/support/hub_server.py) against the real huggingface_hub 2.4.0 / diffusers download code.

huggingface_hub reads HF_ENDPOINT and HF_HOME at import time, so every client-side check runs in a
subprocess whose environment points at the LocalHub started by the test (fixtures in conftest.py).
Model info, listings and search: test_hub_search.py.

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
* Token: missing -> ``RepositoryNotFoundError`` (401 + X-Error-Code RepoNotFound) or ``GatedRepoError``
  (X-Error-Code GatedRepo); wrong token -> ``HfHubHTTPError`` status 401; ``HF_TOKEN`` set -> works.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------------- raw protocol
def test_resolve_headers_ranges_and_errors(hub, repo_id, repo_dir, git_sha1):
    sha = hub.add_repo(repo_id, repo_dir)
    assert sha == hub.add_repo(repo_id, repo_dir) and len(sha) == 40  # deterministic
    host, port = hub.endpoint.removeprefix("http://").split(":")
    data = (repo_dir / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()

    def request(method, path, headers=None):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp, body

    url = f"/{repo_id}/resolve/main/unet/diffusion_pytorch_model.safetensors"
    resp, body = request("HEAD", url)
    assert resp.status == 200 and body == b""
    assert resp.headers["X-Repo-Commit"] == sha
    assert resp.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert resp.headers["X-Linked-Size"] == resp.headers["Content-Length"] == str(len(data))
    assert not [k for k in resp.headers if k.lower().startswith("x-xet")]

    resp, body = request("HEAD", f"/{repo_id}/resolve/{sha}/config.json")
    cfg = (repo_dir / "config.json").read_bytes()
    assert resp.status == 200 and resp.headers["ETag"] == f'"{git_sha1(cfg)}"' and "X-Linked-Etag" not in resp.headers

    resp, body = request("GET", url, {"Range": "bytes=100-"})
    assert resp.status == 206 and body == data[100:]
    assert resp.headers["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    resp, body = request("GET", url, {"Range": "bytes=5-9"})
    assert resp.status == 206 and body == data[5:10]
    resp, body = request("GET", url, {"Range": f"bytes={len(data)}-"})
    assert resp.status == 416

    hub.fail_once(repo_id, "unet/diffusion_pytorch_model.safetensors", after_bytes=1000)
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
        (f"/{repo_id}/resolve/nope/config.json", "RevisionNotFound"),
        (f"/{repo_id}/resolve/main/missing.json", "EntryNotFound"),
        ("/api/models/nobody/nothing", "RepoNotFound"),
        (f"/api/models/{repo_id}/revision/nope", "RevisionNotFound"),
    ]:
        resp, _ = request("GET", path)
        assert (resp.status, resp.headers["X-Error-Code"]) == (404, code), path
    assert resp.headers.get("X-Repo-Commit") is None
    resp, _ = request("HEAD", f"/{repo_id}/resolve/main/missing.json")
    assert resp.headers["X-Repo-Commit"] == sha  # lets huggingface_hub cache the miss in .no_exist

    resp, body = request("GET", f"/api/models/{repo_id}/tree/main/notes")
    assert resp.status == 200
    assert [(e["type"], e["path"]) for e in json.loads(body)] == [("directory", "notes/deep")]
    assert hub.unknown_requests == []
    request("GET", "/api/spaces/x/y")
    assert hub.unknown_requests == [("GET", "/api/spaces/x/y")]


# ----------------------------------------------------------------------------------------------- 1. progress
def test_progress_reported_to_tqdm_class(hub, repo_id, repo_dir, tmp_path, run_hf, repo_files):
    result = run_hf(
        hub,
        tmp_path / "hf",
        recorder=True,
        code=f"""
        from huggingface_hub import snapshot_download, hf_hub_download
        snapshot_download("{repo_id}", tqdm_class=Recorder)
        snapshot_bars = bars_report()
        BARS.clear()
        hf_hub_download("{repo_id}", "unet/diffusion_pytorch_model.safetensors", force_download=True,
                        tqdm_class=Recorder)
        emit({{"bars": snapshot_bars, "single": bars_report()}})
        """,
    )
    sizes = {k: len(v) for k, v in repo_files(repo_dir).items()}
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


# ----------------------------------------------------------------------------------------------- 2. interruption
def test_cut_inside_first_chunk_is_retried_internally_from_zero(hub, repo_id, repo_dir, tmp_path, run_hf, repo_files,
                                                                assert_snapshot):
    sha = hub.add_repo(repo_id, repo_dir)
    name = "unet/diffusion_pytorch_model.safetensors"
    hub.fail_once(repo_id, name, after_bytes=200_000)
    result = run_hf(hub, tmp_path / "hf", recorder=True, skip_sleeps=True, code=f"""
        from huggingface_hub import snapshot_download
        path = snapshot_download("{repo_id}", tqdm_class=Recorder)
        emit({{"path": path, "bars": bars_report(), "sleeps": SLEEPS}})
        """)
    assert result["sleeps"] == [1]
    assert_snapshot(tmp_path / "hf", repo_id, sha, repo_dir)
    gets = [e for e in hub.log_snapshot() if e[:2] == ("GET", f"/{repo_id}/resolve/{sha}/{name}")]
    assert gets == [("GET", f"/{repo_id}/resolve/{sha}/{name}", "")] * 2  # re-GET without Range
    assert "Trying to resume download" in result["_stderr"]
    total = sum(len(v) for v in repo_files(repo_dir).values())
    assert sum(result["bars"][1]["updates"]) == result["bars"][1]["total"] == total


def test_cut_after_first_chunk_resumes_with_range(hub, big_repo_id, big_repo_dir, tmp_path, run_hf, assert_snapshot,
                                                  hf_chunk_size):
    sha = hub.add_repo(big_repo_id, big_repo_dir)
    size = (big_repo_dir / "model.safetensors").stat().st_size
    hub.fail_once(big_repo_id, "model.safetensors", after_bytes=hf_chunk_size + 250_000)
    result = run_hf(hub, tmp_path / "hf", recorder=True, skip_sleeps=True, code=f"""
        from huggingface_hub import snapshot_download
        path = snapshot_download("{big_repo_id}", tqdm_class=Recorder)
        emit({{"path": path, "bars": bars_report(), "sleeps": SLEEPS}})
        """)
    assert result["sleeps"] == [1]
    assert_snapshot(tmp_path / "hf", big_repo_id, sha, big_repo_dir)
    gets = [e for e in hub.log_snapshot() if e[:2] == ("GET", f"/{big_repo_id}/resolve/{sha}/model.safetensors")]
    assert [g[2] for g in gets] == ["", f"bytes={hf_chunk_size}-"]
    reconstruct = result["bars"][1]
    config_size = (big_repo_dir / "config.json").stat().st_size
    assert sorted(reconstruct["updates"]) == sorted([config_size, hf_chunk_size, size - hf_chunk_size])
    assert reconstruct["total"] == size + config_size  # the retry reuses the bar: total counted once


def test_repeated_cuts_raise_then_next_call_downloads_from_scratch(hub, repo_id, repo_dir, tmp_path, run_hf, hub_calls,
                                                                   assert_snapshot):
    sha = hub.add_repo(repo_id, repo_dir)
    name = "text_encoder/model.safetensors"
    hub.fail_once(repo_id, name, after_bytes=5_000, times=6)
    first = run_hf(hub, tmp_path / "hf", skip_sleeps=True, code=f"""
        from huggingface_hub import snapshot_download
        try:
            snapshot_download("{repo_id}")  # 8 workers >= 7 files: the other files all start and finish
            emit({{"error": None}})
        except Exception as e:
            import glob
            emit({{"error": describe(e), "sleeps": SLEEPS,
                   "incomplete": glob.glob(os.environ["HF_HOME"] + "/hub/**/*.incomplete", recursive=True)}})
        """)
    assert first["error"]["type"] == "httpx2.RemoteProtocolError"
    assert first["sleeps"] == [1] * 5 and first["incomplete"] == []
    url = f"/{repo_id}/resolve/{sha}/{name}"
    assert [e for e in hub.log_snapshot() if e[1] == url and e[0] == "GET"] == [("GET", url, "")] * 6

    hub.clear_log()
    run_hf(hub, tmp_path / "hf", f"""
        from huggingface_hub import snapshot_download
        emit({{"path": snapshot_download("{repo_id}")}})
        """)
    assert_snapshot(tmp_path / "hf", repo_id, sha, repo_dir)
    # Only the failed file is fetched again, from byte 0; the tree listing comes from the on-disk cache.
    assert hub_calls(hub.log_snapshot()) == [
        ("GET", f"/api/models/{repo_id}/revision/main", ""),
        ("HEAD", url, ""),
        ("GET", url, ""),
    ]


# ----------------------------------------------------------------------------------------------- 3. offline
def test_unreachable_hub_errors(hub, repo_id, tmp_path, run_hf):
    code = f"""
        from huggingface_hub import snapshot_download, hf_hub_download
        out = {{}}
        t0 = time.perf_counter()
        try:
            snapshot_download("{repo_id}")
        except Exception as e:
            out["snapshot"] = describe(e)
        out["snapshot_seconds"] = time.perf_counter() - t0
        out["snapshot_sleeps"] = list(SLEEPS)
        try:
            hf_hub_download("{repo_id}", "config.json")
        except Exception as e:
            out["file"] = describe(e)
        out["file_sleeps"] = SLEEPS[len(out["snapshot_sleeps"]):]
        emit(out)
    """
    endpoint = hub.endpoint
    hub.set_offline(True)  # connection refused
    refused = run_hf(hub, tmp_path / "hf1", code, skip_sleeps=True)
    assert hub.log_snapshot() == []
    hub.set_offline(True, mode="503")
    unavailable = run_hf(hub, tmp_path / "hf2", code, skip_sleeps=True)
    assert {e[0] for e in hub.log_snapshot()} == {"GET", "HEAD"}
    hub.set_offline(False)
    hub.clear_log()
    back = run_hf(hub, tmp_path / "hf3", f"""
        from huggingface_hub import snapshot_download
        emit({{"path": snapshot_download("{repo_id}")}})
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


def test_cached_snapshot_survives_outage_and_hf_hub_offline(hub, repo_id, repo_dir, tmp_path, run_hf, hub_calls,
                                                            assert_snapshot):
    sha = hub.add_repo(repo_id, repo_dir)
    hf_home = tmp_path / "hf"
    code = f"""
        from huggingface_hub import snapshot_download
        emit({{"path": snapshot_download("{repo_id}")}})
    """
    first = run_hf(hub, hf_home, code)["path"]
    assert_snapshot(hf_home, repo_id, sha, repo_dir)

    before = hub.log_snapshot()
    assert run_hf(hub, hf_home, code, HF_HUB_OFFLINE="1")["path"] == first
    assert hub.log_snapshot() == before  # no request at all

    hub.set_offline(True)
    assert run_hf(hub, hf_home, code)["path"] == first
    hub.set_offline(True, mode="503")
    assert run_hf(hub, hf_home, code)["path"] == first
    assert hub_calls(hub.log_snapshot()[len(before):]) == [("GET", f"/api/models/{repo_id}/revision/main", "")]


# ----------------------------------------------------------------------------------------------- 4. token
def test_token_required(hub, repo_id, repo_dir, tmp_path, run_hf, assert_snapshot):
    sha = hub.add_repo(repo_id, repo_dir)
    hub.require_token("hf_local_secret")
    code = f"""
        from huggingface_hub import snapshot_download
        try:
            emit({{"path": snapshot_download("{repo_id}")}})
        except Exception as e:
            emit({{"error": describe(e)}})
    """
    missing = run_hf(hub, tmp_path / "hf", code)["error"]
    wrong = run_hf(hub, tmp_path / "hf", code, HF_TOKEN="hf_wrong")["error"]
    hub.require_token("hf_local_secret", gated=True)
    gated = run_hf(hub, tmp_path / "hf", code)["error"]
    ok = run_hf(hub, tmp_path / "hf", code, HF_TOKEN="hf_local_secret")

    assert missing["type"] == "huggingface_hub.errors.RepositoryNotFoundError" and missing["status"] == 401
    assert wrong["type"] == "huggingface_hub.errors.HfHubHTTPError" and wrong["status"] == 401
    assert gated["type"] == "huggingface_hub.errors.GatedRepoError" and gated["status"] == 401
    assert ok["path"].endswith(sha)
    assert_snapshot(tmp_path / "hf", repo_id, sha, repo_dir)


# ----------------------------------------------------------------------------------------------- 5. diffusers
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


def test_diffusers_from_pretrained_through_hub(hub, tmp_path, hf_env, hub_calls, repo_files, assert_snapshot):
    folder = tmp_path / "tiny-sd"
    hf_home = tmp_path / "hf"
    env = hf_env(hub, hf_home, DIFFUSERS_VERBOSITY="error", HF_HUB_DISABLE_XET="0")
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

    assert_snapshot(hf_home, "atelier/tiny-sd", sha, folder)
    log = hub_calls(hub.log_snapshot())
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
    assert downloaded == set(repo_files(folder))
    assert hub.unknown_requests == []
