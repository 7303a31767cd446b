"""The JSON bodies of LocalHub's ``/api/models`` endpoints: repo metadata, model info, search, paths-info.

Plain functions over :class:`tests.support.hub_repo.Snapshot`; :class:`tests.support.hub_server.LocalHub`
does the HTTP, the locking and the bookkeeping (search log, counters, tokens) and passes in what they need.

Repo metadata is the Hub's: ``tags``, ``license``, ``pipeline_tag`` and ``library_name`` come from the YAML
front matter of the repo's ``README.md`` (its model card, also served as ``cardData``), plus the tags the
Hub derives from the files (``diffusers``, ``diffusers:<_class_name>``, ``safetensors``, ``license:<id>``);
``downloads`` and ``likes`` are the counters set with :meth:`LocalHub.add_repo`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml

from tests.support.hub_repo import FIXED_DATE, Snapshot, dir_entry, file_entry

__all__ = ["LIST_DEFAULT", "SORT_KEYS", "model_info", "paths_info", "repo_fields", "search"]

#: The fields ``GET /api/models`` gives per entry without ``expand``/``full``.
LIST_DEFAULT = ("_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
                "library_name", "createdAt", "modelId")
#: What ``sort=`` accepts.
SORT_KEYS = {"downloads", "likes", "createdAt", "lastModified", "trendingScore"}


def repo_fields(snap: Snapshot, *, file_sizes: bool, downloads: int = 0, likes: int = 0, private: bool = False,
                gated: Any = False) -> dict[str, Any]:
    """Everything the Hub knows of a repo, with its API field names.

    ``private`` and ``gated`` are the values to report for those fields (``gated`` is ``False`` or ``"auto"``).
    """
    files = list(snap.files.values())
    siblings = []
    for f in files:
        s: dict[str, Any] = {"rfilename": f.path}
        if file_sizes:
            s["size"] = f.size
            s["blobId"] = f.blob_id
            if f.is_lfs:
                s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
        siblings.append(s)
    card = _model_card(snap)
    tags = [str(t) for t in _as_list(card.get("tags"))]
    library = card.get("library_name")
    pipeline_tag = card.get("pipeline_tag")
    if "model_index.json" in snap.files:
        library = library or "diffusers"
        cls = _json_class_name(snap.files["model_index.json"].disk_path)
        tags += ["diffusers"] + ([f"diffusers:{cls}"] if cls else [])
        if pipeline_tag is None:
            pipeline_tag = "image-to-image" if cls == "StableDiffusionUpscalePipeline" else "text-to-image"
    if any(n.endswith(".safetensors") for n in snap.files):
        tags.append("safetensors")
    if pipeline_tag:
        tags.append(str(pipeline_tag))
    tags += [f"license:{lic}" for lic in _as_list(card.get("license"))]
    tags = list(dict.fromkeys(tags))
    return {
        "_id": snap.commit[:24],
        "id": snap.repo_id,
        "modelId": snap.repo_id,
        "author": snap.repo_id.split("/")[0] if "/" in snap.repo_id else None,
        "sha": snap.commit,
        "lastModified": FIXED_DATE,
        "createdAt": FIXED_DATE,
        "private": private,
        "gated": gated,
        "disabled": False,
        "downloads": downloads,
        "likes": likes,
        "trendingScore": 0,
        "tags": tags,
        "pipeline_tag": pipeline_tag,
        "library_name": library,
        "cardData": card or None,
        "siblings": siblings,
        "spaces": [],
        "usedStorage": sum(f.size for f in files),
    }


def model_info(snap: Snapshot, query: Mapping[str, list[str]], *, downloads: int = 0, likes: int = 0,
               private: bool = False, gated: Any = False) -> dict[str, Any]:
    """``GET /api/models/{repo_id}[/revision/{rev}]``: ``?blobs=true`` adds file sizes, ``?expand=`` filters."""
    blobs = (query.get("blobs", ["false"])[0]).lower() in ("1", "true")
    info = repo_fields(snap, file_sizes=blobs, downloads=downloads, likes=likes, private=private, gated=gated)
    for key in ("pipeline_tag", "cardData", "library_name"):
        if info[key] is None:
            del info[key]
    expand = query.get("expand") or query.get("expand[]")
    if expand:
        wanted = set(expand)
        info = {k: v for k, v in info.items() if k in wanted or k in ("_id", "id")}
    return info


def search(snapshots: Iterable[Snapshot], query: Mapping[str, list[str]], *,
           stats: Mapping[str, tuple[int, int]], private: bool = False, gated: Any = False) -> list[dict]:
    """The Hub's model search (``GET /api/models``) over ``snapshots`` (one per repo, in repo id order).

    Repos whose id contains ``search`` (case-insensitive), by ``author``, with every ``filter`` tag, sorted
    descending by ``sort`` (one of :data:`SORT_KEYS`; ``direction=1`` ascends), at most ``limit``; entries carry
    the Hub's default list fields, or only ``expand``/``expand[]`` fields (plus ``_id``, ``id``), or everything
    with ``full=true``; siblings list ``rfilename`` only, as on the Hub. ``stats`` maps repo id ->
    (downloads, likes); ``private``/``gated`` as for :func:`repo_fields`.
    """
    def first(name: str, default: str = "") -> str:
        return (query.get(name) or [default])[0]

    search_text = first("search").lower()
    author = first("author")
    wanted_tags = set(query.get("filter", []) + query.get("filter[]", []))
    expand = query.get("expand", []) + query.get("expand[]", [])
    full = first("full").lower() in ("1", "true")
    entries = []
    for snap in snapshots:
        repo_id = snap.repo_id
        if search_text not in repo_id.lower():
            continue
        if author and repo_id.split("/")[0] != author:
            continue
        downloads, likes = stats.get(repo_id, (0, 0))
        fields = repo_fields(snap, file_sizes=False, downloads=downloads, likes=likes, private=private,
                             gated=gated)
        if not wanted_tags <= set(fields["tags"]) | {fields["library_name"], fields["pipeline_tag"]}:
            continue
        entries.append(fields)
    sort = first("sort")
    if sort in SORT_KEYS:
        entries.sort(key=lambda e: e[sort], reverse=first("direction", "-1") != "1")
    limit = first("limit")
    if limit.isdigit():
        entries = entries[: int(limit)]
    if expand:
        keep = set(expand) | {"_id", "id"}
    elif full:
        keep = set(LIST_DEFAULT) | {"author", "sha", "lastModified", "gated", "disabled", "siblings"}
    else:
        keep = set(LIST_DEFAULT)
    if first("cardData").lower() in ("1", "true"):
        keep.add("cardData")
    return [{k: v for k, v in e.items() if k in keep and not (v is None and k not in expand)} for e in entries]


def paths_info(snap: Snapshot, body: bytes, content_type: str) -> list[dict]:
    """``POST /api/models/{repo_id}/paths-info/{rev}``: entries for the ``paths`` asked (form or JSON body)."""
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    if "paths" not in form and content_type.startswith("application/json"):
        try:
            payload = json.loads(body or b"{}")
            form = {"paths": list(payload.get("paths", [])), "expand": [str(payload.get("expand", False))]}
        except ValueError:
            form = {}
    expand = (form.get("expand", ["false"])[0]).lower() in ("1", "true")
    out = []
    for p in form.get("paths", []):
        p = p.strip("/")
        if p in snap.files:
            out.append(file_entry(snap, snap.files[p], expand))
        elif p in snap.dirs:
            out.append(dir_entry(snap, p, expand))
    return out


def _model_card(snap: Snapshot) -> dict[str, Any]:
    """The YAML front matter of the repo's README.md (the Hub's ``cardData``), or {}."""
    readme = snap.files.get("README.md")
    if readme is None:
        return {}
    text = readme.disk_path.read_text(encoding="utf-8", errors="replace")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if match is None:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _json_class_name(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get("_class_name") if isinstance(data, dict) else None
