"""The list of available extensions, in A1111's ``index.json`` format:

    {"tags": {"script": "a new entry in the Scripts dropdown", ...},
     "extensions": [{"name", "url", "description", "tags": [...], "added": "2022-11-01",
                     "created_at": "2022-10-29T...Z", "stars": 123}, ...]}

It is fetched from a URL (A1111's index by default; the ``extensions_index_url`` option changes it)
with a timeout, and the last copy that was fetched is kept in ``data_dir/cache/extensions-index.json``
with its fetch time, so the tab works offline and can say how old its list is.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipelines.errors import ValidationError
from pipelines.extension_manager.errors import IndexUnavailable
from pipelines.extension_manager.urls import folder_name
from pipelines.files import write_text_atomically

log = logging.getLogger(__name__)

DEFAULT_INDEX_URL = "https://raw.githubusercontent.com/AUTOMATIC1111/stable-diffusion-webui-extensions/master/index.json"
INDEX_URL_KEY = "extensions_index_url"  # the option that changes it
FETCH_TIMEOUT_S = 10.0
MAX_INDEX_BYTES = 32 * 2**20
SortOrder = Literal["newest", "stars", "a-z"]
SORT_ORDERS: tuple[SortOrder, ...] = ("newest", "stars", "a-z")


@dataclass(frozen=True)
class IndexEntry:
    name: str
    url: str
    description: str = ""
    tags: tuple[str, ...] = ()
    added: str = ""  # when the index listed it (YYYY-MM-DD)
    created_at: str = ""  # when the repository was created (ISO time)
    stars: int = 0


@dataclass(frozen=True)
class ExtensionIndex:
    url: str
    tags: dict[str, str]
    entries: tuple[IndexEntry, ...]
    fetched_at: float  # seconds since the epoch
    from_cache: bool = False  # served from the cached copy
    error: str | None = None  # why the network copy could not be had (when from_cache)


def parse_index(data: Any) -> tuple[dict[str, str], tuple[IndexEntry, ...]]:
    """Tags and entries of an index document; entries without a name or URL are skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("extensions"), list):
        raise ValueError("not an extension index (no \"extensions\" list)")
    tags = {str(k): str(v) for k, v in (data.get("tags") or {}).items()} if isinstance(data.get("tags"), dict) else {}
    entries = []
    for item in data["extensions"]:
        if not isinstance(item, dict) or not item.get("name") or not item.get("url"):
            continue
        raw_tags = item.get("tags") or []
        stars = item.get("stars")
        entries.append(IndexEntry(
            name=str(item["name"]), url=str(item["url"]), description=str(item.get("description") or ""),
            tags=tuple(str(t) for t in raw_tags) if isinstance(raw_tags, list) else (),
            added=str(item.get("added") or ""), created_at=str(item.get("created_at") or ""),
            stars=stars if isinstance(stars, int) and not isinstance(stars, bool) else 0))
    return tags, tuple(entries)


def _download(url: str, timeout: float) -> bytes:
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"the index URL must be http(s), got {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "Atelier extension index"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
        body = response.read(MAX_INDEX_BYTES + 1)
    if len(body) > MAX_INDEX_BYTES:
        raise ValueError("the index is larger than 32 MiB")
    return body


def load_index(url: str, cache_file: Path, *, timeout: float = FETCH_TIMEOUT_S, offline: bool = False,
               now: float | None = None) -> ExtensionIndex:
    """The index from ``url`` (cached on success); when it cannot be had, the cached copy, saying why.

    ``offline``: use the cache without trying the network. Raises :class:`IndexUnavailable` when
    neither works."""
    error = "offline: not fetched"
    if not offline:
        try:
            data = json.loads(_download(url, timeout))
            tags, entries = parse_index(data)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            error = f"could not fetch {url}: {exc}"
            log.warning("extension index: %s", error)
        else:
            fetched_at = time.time() if now is None else now
            write_text_atomically(cache_file, json.dumps({"url": url, "fetched_at": fetched_at, "index": data}))
            return ExtensionIndex(url=url, tags=tags, entries=entries, fetched_at=fetched_at)
    cached = read_cached(cache_file)
    if cached is None:
        raise IndexUnavailable(f"The extension index is unavailable ({error}) and no copy of it is saved yet")
    return ExtensionIndex(url=cached.url, tags=cached.tags, entries=cached.entries, fetched_at=cached.fetched_at,
                          from_cache=True, error=error)


def read_cached(cache_file: Path) -> ExtensionIndex | None:
    try:
        saved = json.loads(cache_file.read_text(encoding="utf-8"))
        tags, entries = parse_index(saved["index"])
        return ExtensionIndex(url=str(saved["url"]), tags=tags, entries=entries,
                              fetched_at=float(saved["fetched_at"]), from_cache=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def age_text(seconds: float) -> str:
    """``just now``, ``5 minutes ago``, ``3 hours ago``, ``2 days ago``."""
    seconds = max(0.0, seconds)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def normalise_url(url: str) -> str:
    """For matching an index entry with an installed extension's remote."""
    url = url.strip().rstrip("/").lower()
    return url[: -len(".git")] if url.endswith(".git") else url


def _folder(url: str) -> str:
    try:
        return folder_name(url)
    except ValidationError:
        return ""


@dataclass(frozen=True)
class AvailableExtension:
    entry: IndexEntry
    installed: bool


def search(index: ExtensionIndex, *, query: str = "", tags: Iterable[str] = (), hide_tags: Iterable[str] = (),
           sort: SortOrder = "newest", installed_urls: Iterable[str] = (),
           installed_names: Iterable[str] = ()) -> list[AvailableExtension]:
    """Entries matching ``query`` (name, description or URL), having every tag in ``tags`` and none of
    ``hide_tags``, sorted (newest added first, most stars first, or by name), installed ones marked."""
    words = query.lower().split()
    wanted, hidden = set(tags), set(hide_tags)
    urls = {normalise_url(u) for u in installed_urls if u}
    names = {n.lower() for n in installed_names}
    found = []
    for entry in index.entries:
        text = f"{entry.name} {entry.description} {entry.url}".lower()
        if any(w not in text for w in words) or not wanted <= set(entry.tags) or hidden & set(entry.tags):
            continue
        installed = normalise_url(entry.url) in urls or _folder(entry.url).lower() in names
        found.append(AvailableExtension(entry, installed))
    if sort == "stars":
        found.sort(key=lambda a: (-a.entry.stars, a.entry.name.lower()))
    elif sort == "a-z":
        found.sort(key=lambda a: a.entry.name.lower())
    else:
        found.sort(key=lambda a: (a.entry.added, a.entry.created_at), reverse=True)
    return found
