"""LocalHub's metadata endpoints (tests/support/hub_metadata.py) against the real huggingface_hub 2.4.0 client.

Model info, tree and paths-info listings, existence checks and error mapping (around a snapshot_download), and
model search, each checked through huggingface_hub in a subprocess pointed at the LocalHub of the test (fixtures
in conftest.py). Downloads, ranges, progress, failures, offline, tokens and diffusers: test_hub_server.py.

Protocol facts pinned down by these tests (huggingface_hub 2.4.0):

* ``HfApi().list_models(search=, sort="downloads", limit=N, expand=[...])``: one ``GET /api/models`` with
  ``search``, ``sort``, ``limit`` and ``expand`` repeated once per field (no ``direction``: the Hub sorts
  descending); ``full=True`` is sent as ``full=true``; the client stops after ``limit`` entries. The list
  API's siblings carry file names only (``size`` is None); ``usedStorage`` is the only size it gives.
"""

from __future__ import annotations

import json


# ---------------------------------------------------------------------------------- 1. snapshot layout + api
def test_snapshot_download_and_api_calls(hub, repo_id, repo_dir, tmp_path, run_hf, hub_calls, repo_files,
                                         assert_snapshot):
    sha = hub.add_repo(repo_id, repo_dir)
    result = run_hf(
        hub,
        tmp_path / "hf",
        f"""
        from huggingface_hub import (HfApi, snapshot_download, hf_hub_download, model_info, list_repo_files,
                                     list_repo_tree, get_paths_info)
        out = {{}}
        out["path"] = snapshot_download("{repo_id}")
        info = model_info("{repo_id}")
        out["sha"], out["siblings"] = info.sha, sorted(s.rfilename for s in info.siblings)
        full = model_info("{repo_id}", files_metadata=True)
        out["lfs"] = sorted(s.rfilename for s in full.siblings if s.lfs is not None)
        out["files"] = sorted(list_repo_files("{repo_id}"))
        out["top"] = sorted((type(e).__name__, e.path) for e in list_repo_tree("{repo_id}"))
        out["paths"] = sorted(e.path for e in get_paths_info("{repo_id}", ["config.json", "unet"]))
        out["hf_hub_download"] = hf_hub_download("{repo_id}", "notes/deep/info.txt")
        out["exists"] = [HfApi().file_exists("{repo_id}", "config.json"), HfApi().file_exists("{repo_id}", "nope.txt"),
                         HfApi().repo_exists("{repo_id}"), HfApi().repo_exists("nobody/nothing")]
        errors = {{}}
        for key, call in [
            ("missing_file", lambda: hf_hub_download("{repo_id}", "missing.json")),
            ("missing_repo", lambda: snapshot_download("nobody/nothing")),
            ("missing_revision", lambda: snapshot_download("{repo_id}", revision="v9")),
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
    snap = assert_snapshot(hf_home, repo_id, sha, repo_dir)
    assert result["path"] == str(snap)
    names = sorted(repo_files(repo_dir))
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
    assert (hf_home / "hub" / f"models--{repo_id.replace('/', '--')}" / ".no_exist" / sha / "missing.json").exists()

    log = hub_calls(hub.log_snapshot())
    assert log[0] == ("GET", f"/api/models/{repo_id}/revision/main", "")
    assert log[1] == ("GET", f"/api/models/{repo_id}/tree/{sha}", "")
    for name in names:
        assert ("HEAD", f"/{repo_id}/resolve/{sha}/{name}", "") in log
        assert ("GET", f"/{repo_id}/resolve/{sha}/{name}", "") in log
    assert hub.unknown_requests == []


# ----------------------------------------------------------------------------------------------- 2. search
def test_model_search_as_list_models_asks(hub, repo_id, repo_dir, tmp_path, run_hf, save_random_safetensors):
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "README.md").write_text("---\nlicense: openrail++\ntags:\n- lora\n- stable-diffusion\n"
                                    "library_name: diffusers\npipeline_tag: text-to-image\n---\n# A LoRA\n")
    save_random_safetensors(lora / "pixel.safetensors", 1000, seed=4)
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    hub.add_repo("someone/pixel-lora", lora, downloads=500, likes=7)
    hub.add_repo("atelier/tiny-pipe", pipe, downloads=900, likes=1)
    hub.add_repo(repo_id, repo_dir, downloads=20)
    hub.clear_log()
    result = run_hf(hub, tmp_path / "hf", """
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
