"""A tiny local stand-in for the Hugging Face Hub, for tests.

``LocalHub`` serves folders from disk over the parts of the Hub HTTP protocol that
``huggingface_hub`` (2.4.x) and ``diffusers`` use to download models, so tests can
exercise the real download code path (cache layout, byte progress, retries,
resume with ``Range``, offline fallback, tokens) with ``HF_ENDPOINT`` pointing at it.

Endpoints served (model repos only, ``repo_id`` is ``name`` or ``namespace/name``):

* ``GET  /api/models?search=...&author=...&filter=...&sort=...&direction=...&limit=...&expand=...&full=...``:
  model search (``list_models``; see :func:`tests.support.hub_metadata.search`).
* ``GET  /api/models/{repo_id}`` and ``/api/models/{repo_id}/revision/{rev}``:
  model info (``model_info``, ``repo_info``, ``resolve_revision``);
  ``?blobs=true`` adds size/blobId/lfs to siblings, ``?expand=...`` filters fields.
* ``GET  /api/models/{repo_id}/tree/{rev}[/{path}]?recursive=...&expand=...``:
  tree listing (``list_repo_tree``, ``list_repo_files``, ``snapshot_download``).
* ``POST /api/models/{repo_id}/paths-info/{rev}`` (form ``paths=...``): ``get_paths_info``.
* ``HEAD|GET /{repo_id}/resolve/{rev}/{filename}``: the file itself, with
  ``X-Repo-Commit``, ``ETag`` (git blob sha1, or sha256 for LFS-like files, which
  also get ``X-Linked-Etag`` / ``X-Linked-Size``), ``Content-Length``,
  ``Accept-Ranges``; ``GET`` honours ``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-n``
  (206 + ``Content-Range``; 416 when unsatisfiable).

The JSON bodies of the ``/api/models`` endpoints (repo metadata from the model card and files, model info,
search, paths-info) are built by :mod:`tests.support.hub_metadata`; ``downloads`` and ``likes`` are set with
:meth:`LocalHub.add_repo`.

Errors use the ``X-Error-Code`` header values that ``huggingface_hub`` maps to
exception types: ``RepoNotFound`` (-> ``RepositoryNotFoundError``),
``RevisionNotFound`` (-> ``RevisionNotFoundError``), ``EntryNotFound``
(-> ``RemoteEntryNotFoundError``; the response carries ``X-Repo-Commit`` like the real
Hub so the ``.no_exist`` cache marker is written) and ``GatedRepo`` (-> ``GatedRepoError``).
No ``X-Xet-*`` header is ever sent, so clients always use the plain HTTP download path.

Everything is stdlib (``ThreadingHTTPServer`` on a daemon thread, HTTP/1.1
keep-alive); it binds 127.0.0.1 by default and starts in a few milliseconds.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.support import hub_metadata
from tests.support.hub_repo import RepoFile, Snapshot, build_snapshot, parse_range, tree_entries

__all__ = ["LocalHub"]

@dataclass
class _Failure:
    after_bytes: int
    remaining: int


_SEND_CHUNK = 64 * 1024
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, handler, hub: LocalHub):
        self.hub = hub
        super().__init__(address, handler)

    def handle_error(self, request, client_address):  # noqa: D401 - silence client disconnects
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AtelierLocalHub/1.0"
    sys_version = ""
    server: _Server

    # ---- plumbing -------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def setup(self) -> None:
        super().setup()
        self.server.hub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.hub._track(self.connection, add=False)

    def do_GET(self) -> None:  # noqa: N802
        self.server.hub._dispatch(self, "GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self.server.hub._dispatch(self, "HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self.server.hub._dispatch(self, "POST")

    def do_PUT(self) -> None:  # noqa: N802
        self.server.hub._dispatch(self, "PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.hub._dispatch(self, "DELETE")


class LocalHub:
    """A local Hugging Face Hub look-alike serving folders from disk (see module docstring).

    Usage::

        with LocalHub() as hub:
            sha = hub.add_repo("atelier/tiny-sd", folder)
            env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp / "hf")}
            ...  # run huggingface_hub / diffusers in a subprocess with env
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._repos: dict[str, dict[str, Snapshot]] = {}
        self._stats: dict[str, tuple[int, int]] = {}  # repo id -> (downloads, likes)
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._token: str | None = None
        self._gated = False
        self._offline = False
        self._offline_mode = "refuse"
        self._throttle_bps: float | None = None
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        #: (method, percent-decoded path without query string, Range header or "") per request received.
        self.requests_log: list[tuple[str, str, str]] = []
        #: The query of each model search (``GET /api/models``), as parsed lists of values.
        self.search_log: list[dict[str, list[str]]] = []
        #: Requests that matched no endpoint (method, raw target): handy while extending the server.
        self.unknown_requests: list[tuple[str, str]] = []

    # ---- repos -----------------------------------------------------------------------
    def add_repo(self, repo_id: str, folder: Path, *, revision: str = "main", downloads: int = 0,
                 likes: int = 0) -> str:
        """Serve every file under ``folder`` as ``repo_id`` at ``revision``; return its commit sha.

        The sha is deterministic (sha1 over repo id, revision and the files' git blob ids).
        The files are hashed now and streamed from disk on each request, so they must not
        change afterwards. Adding the same repo/revision again replaces it. The commit sha is
        accepted as a revision too. ``downloads`` and ``likes`` are what the API reports (and
        what search sorts by).
        """
        snapshot = build_snapshot(repo_id, Path(folder), revision)
        with self._lock:
            self._repos.setdefault(repo_id, {})[revision] = snapshot
            self._stats[repo_id] = (downloads, likes)
        return snapshot.commit

    # ---- fault injection / switches -------------------------------------------------
    def fail_once(self, repo_id: str, filename: str, *, after_bytes: int, times: int = 1) -> None:
        """Make the next ``times`` GETs of ``filename`` send ``after_bytes`` body bytes then drop the connection.

        The response headers announce the full length, so the client sees a truncated body
        (``httpx`` raises ``RemoteProtocolError``). Later GETs work normally (with Range support).
        """
        if after_bytes < 0 or times < 1:
            raise ValueError("after_bytes must be >= 0 and times >= 1")
        with self._lock:
            self._failures[(repo_id, filename)] = _Failure(after_bytes, times)

    def set_offline(self, offline: bool, *, mode: str = "refuse") -> None:
        """Simulate an unreachable Hub.

        ``mode="refuse"`` (default): the listening socket is closed and open keep-alive
        connections are shut down, so clients get ``ConnectError`` (connection refused);
        nothing reaches ``requests_log``. ``mode="503"``: every request is answered with
        ``503 Service Unavailable`` (and logged). ``set_offline(False)`` serves again on the
        same port.
        """
        if mode not in ("refuse", "503"):
            raise ValueError("mode must be 'refuse' or '503'")
        with self._lock:
            was_refusing = self._offline and self._offline_mode == "refuse"
            self._offline = offline
            self._offline_mode = mode
            running = self._started
        if not running:
            return
        if offline and mode == "refuse" and not was_refusing:
            self._shutdown_server()
            self._close_connections()
        elif (not offline or mode != "refuse") and was_refusing:
            self._start_server()

    def require_token(self, token: str | None, *, gated: bool = False) -> None:
        """Require ``Authorization: Bearer <token>`` on every request (``None`` disables).

        Missing token -> 401 with ``X-Error-Code: RepoNotFound`` (private repo behaviour,
        -> ``RepositoryNotFoundError``), or ``X-Error-Code: GatedRepo`` when ``gated=True``
        (-> ``GatedRepoError``). Wrong token -> 401 with ``X-Error-Message: Invalid credentials
        in Authorization header`` (-> plain ``HfHubHTTPError`` with status 401).
        """
        with self._lock:
            self._token = token
            self._gated = gated

    def throttle(self, bytes_per_second: float | None) -> None:
        """Limit file body throughput (per response), e.g. to observe progress mid-download."""
        with self._lock:
            self._throttle_bps = bytes_per_second if bytes_per_second else None

    def clear_log(self) -> None:
        with self._lock:
            self.requests_log.clear()
            self.search_log.clear()
            self.unknown_requests.clear()

    def log_snapshot(self) -> list[tuple[str, str, str]]:
        """A copy of ``requests_log`` taken under the lock."""
        with self._lock:
            return list(self.requests_log)

    # ---- lifecycle --------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        if self._port == 0:
            raise RuntimeError("LocalHub is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> LocalHub:
        with self._lock:
            if self._started:
                return self
            self._started = True
        if not (self._offline and self._offline_mode == "refuse"):
            self._start_server()
        elif self._port == 0:
            # Reserve a port number even though we start offline.
            self._start_server()
            self._shutdown_server()
        return self

    def stop(self) -> None:
        with self._lock:
            self._started = False
        self._shutdown_server()
        self._close_connections()

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_server(self) -> None:
        server = _Server((self._host, self._port), _Handler, self)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"LocalHub:{self._port}", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()

    def _shutdown_server(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _close_connections(self) -> None:
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---- request handling -------------------------------------------------------------
    def _dispatch(self, h: _Handler, method: str) -> None:
        split = urlsplit(h.path)
        path = unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        range_header = h.headers.get("Range", "") or ""
        with self._lock:
            self.requests_log.append((method, path, range_header))
            offline = self._offline
            offline_mode = self._offline_mode
            token, gated = self._token, self._gated
        body = b""
        if method in ("POST", "PUT"):
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length) if length else b""

        if offline:
            if offline_mode == "refuse":  # raced with set_offline: drop the connection
                self._drop(h)
                return
            self._send_json(h, method, 503, {"error": "Service Unavailable (LocalHub offline)"})
            return

        if token is not None and split.path != "/api/agent-harnesses":
            auth = h.headers.get("Authorization", "") or ""
            if not auth:
                code = "GatedRepo" if gated else "RepoNotFound"
                msg = "Access to this repo is restricted." if gated else "Invalid username or password."
                self._send_error(h, method, 401, code, msg)
                return
            if auth != f"Bearer {token}":
                self._send_error(h, method, 401, None, "Invalid credentials in Authorization header")
                return

        segments = [unquote(s) for s in split.path.split("/")[1:]]
        if method == "GET" and segments == ["api", "agent-harnesses"]:
            # huggingface_hub fetches this registry (best effort, once a day per HF_HOME) to detect AI agents
            # for its user-agent string. Serve an empty registry: detection then reports "no agent".
            self._send_json(h, method, 200, {"standardEnvVars": [], "harnesses": {}})
            return
        try:
            if len(segments) >= 2 and segments[0] == "api" and segments[1] == "models":
                self._api_models(h, method, segments[2:], query, body)
                return
            self._resolve(h, method, segments, range_header)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _split_repo(self, segments: list[str], keywords: tuple[str, ...]) -> tuple[str | None, list[str]]:
        """Split ``segments`` into (known repo id, rest); (None, rest-guess) when unknown."""
        with self._lock:
            known = set(self._repos)
        if len(segments) >= 2 and f"{segments[0]}/{segments[1]}" in known:
            return f"{segments[0]}/{segments[1]}", segments[2:]
        if segments and segments[0] in known and (len(segments) == 1 or segments[1] in keywords):
            return segments[0], segments[1:]
        return None, segments

    def _snapshot(self, repo_id: str, revision: str) -> Snapshot | None:
        with self._lock:
            revs = self._repos.get(repo_id, {})
            if revision in revs:
                return revs[revision]
            for snap in revs.values():
                if snap.commit == revision:
                    return snap
        return None

    def _default_revision(self, repo_id: str) -> str:
        with self._lock:
            revs = self._repos.get(repo_id, {})
            return "main" if "main" in revs else next(iter(revs), "main")

    # /api/models/...
    def _api_models(self, h: _Handler, method: str, rest: list[str], query: dict, body: bytes) -> None:
        if not rest and method in ("GET", "HEAD"):
            self._send_json(h, method, 200, self._search(query))
            return
        repo_id, tail = self._split_repo(rest, ("revision", "tree", "paths-info"))
        if repo_id is None:
            if not rest:
                self._unknown(h, method)
                return
            self._send_error(h, method, 404, "RepoNotFound", "Repository not found")
            return
        if method in ("GET", "HEAD") and (not tail or tail[0] == "revision"):
            revision = self._default_revision(repo_id) if not tail else "/".join(tail[1:])
            snap = self._snapshot(repo_id, revision)
            if snap is None:
                self._send_error(h, method, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return
            self._send_json(h, method, 200, hub_metadata.model_info(snap, query, **self._repo_state(repo_id)))
            return
        if method in ("GET", "HEAD") and tail and tail[0] == "tree" and len(tail) >= 2:
            snap = self._snapshot(repo_id, tail[1])
            if snap is None:
                self._send_error(h, method, 404, "RevisionNotFound", f"Invalid rev id: {tail[1]}")
                return
            sub = "/".join(tail[2:]).strip("/")
            recursive = (query.get("recursive", ["false"])[0]).lower() in ("1", "true")
            expand = (query.get("expand", ["false"])[0]).lower() in ("1", "true")
            if sub and sub not in snap.dirs:
                self._send_error(h, method, 404, "EntryNotFound", f"{sub} does not exist on \"{tail[1]}\"",
                                 commit=snap.commit)
                return
            self._send_json(h, method, 200, tree_entries(snap, sub, recursive, expand))
            return
        if method == "POST" and tail and tail[0] == "paths-info" and len(tail) >= 2:
            snap = self._snapshot(repo_id, "/".join(tail[1:]))
            if snap is None:
                self._send_error(h, method, 404, "RevisionNotFound", f"Invalid rev id: {'/'.join(tail[1:])}")
                return
            out = hub_metadata.paths_info(snap, body, h.headers.get("Content-Type", ""))
            self._send_json(h, method, 200, out)
            return
        self._unknown(h, method)

    def _repo_state(self, repo_id: str) -> dict[str, Any]:
        """The counters and access fields the API reports for ``repo_id`` (keyword arguments of hub_metadata)."""
        with self._lock:
            downloads, likes = self._stats.get(repo_id, (0, 0))
        return {"downloads": downloads, "likes": likes, **self._access()}

    def _access(self) -> dict[str, Any]:
        """The ``private``/``gated`` fields every repo reports, following :meth:`require_token`."""
        with self._lock:
            private = self._token is not None and not self._gated
            gated: Any = "auto" if (self._token is not None and self._gated) else False
        return {"private": private, "gated": gated}

    # GET /api/models?search=...
    def _search(self, query: dict) -> list[dict]:
        """Log the search, then run it over the default revision of each repo served."""
        with self._lock:
            self.search_log.append({k: list(v) for k, v in query.items()})
            repo_ids = sorted(self._repos)
            stats = dict(self._stats)
        snapshots = [self._snapshot(repo_id, self._default_revision(repo_id)) for repo_id in repo_ids]
        return hub_metadata.search([s for s in snapshots if s is not None], query, stats=stats, **self._access())

    # /{repo_id}/resolve/{revision}/{filename}
    def _resolve(self, h: _Handler, method: str, segments: list[str], range_header: str) -> None:
        repo_id, tail = self._split_repo(segments, ("resolve",))
        if method not in ("GET", "HEAD") or len(tail) < 3 or tail[0] != "resolve":
            if repo_id is None and "resolve" in segments[1:3] and method in ("GET", "HEAD"):
                self._send_error(h, method, 404, "RepoNotFound", "Repository not found")
                return
            self._unknown(h, method)
            return
        if repo_id is None:
            self._send_error(h, method, 404, "RepoNotFound", "Repository not found")
            return
        revision, filename = tail[1], "/".join(tail[2:])
        snap = self._snapshot(repo_id, revision)
        if snap is None:
            self._send_error(h, method, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        f = snap.files.get(filename)
        if f is None:
            self._send_error(h, method, 404, "EntryNotFound", "Entry not found", commit=snap.commit)
            return
        self._send_file(h, method, snap, f, range_header)

    def _send_file(self, h: _Handler, method: str, snap: Snapshot, f: RepoFile, range_header: str) -> None:
        start, end, status = 0, f.size - 1, 200
        if method == "GET":
            rng = parse_range(range_header, f.size)
            if rng == "invalid":
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{f.size}")
                h.send_header("Content-Length", "0")
                h.send_header("X-Repo-Commit", snap.commit)
                h.end_headers()
                return
            if isinstance(rng, tuple):
                start, end = rng
                status = 206
        length = max(end - start + 1, 0)
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(length if method == "GET" else f.size))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("ETag", f'"{f.etag}"')
        h.send_header("X-Repo-Commit", snap.commit)
        if f.is_lfs:
            h.send_header("X-Linked-Etag", f'"{f.sha256}"')
            h.send_header("X-Linked-Size", str(f.size))
        # Same shape as the Hub's CDN; huggingface_hub takes the per-file progress-bar desc from `filename="...";`.
        base = f.path.rsplit("/", 1)[-1]
        ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in base)
        h.send_header(
            "Content-Disposition", f"inline; filename*=UTF-8''{quote(base)}; filename=\"{ascii_name}\";"
        )
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{f.size}")
        h.end_headers()
        if method == "HEAD":
            return

        limit: int | None = None
        with self._lock:
            failure = self._failures.get((snap.repo_id, f.path))
            if failure is not None:
                limit = failure.after_bytes
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._failures[(snap.repo_id, f.path)]
            bps = self._throttle_bps

        to_send = length if limit is None else min(limit, length)
        sent = 0
        t0 = time.monotonic()
        with open(f.disk_path, "rb") as fh:
            fh.seek(start)
            while sent < to_send:
                chunk = fh.read(min(_SEND_CHUNK, to_send - sent))
                if not chunk:
                    break
                h.wfile.write(chunk)
                sent += len(chunk)
                if bps:
                    ahead = sent / bps - (time.monotonic() - t0)
                    if ahead > 0:
                        h.wfile.flush()
                        time.sleep(ahead)
        h.wfile.flush()
        if limit is not None and to_send < length:
            self._drop(h)

    # ---- response helpers ---------------------------------------------------------------
    def _drop(self, h: _Handler) -> None:
        h.close_connection = True
        try:
            h.wfile.flush()
        except OSError:
            pass
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _unknown(self, h: _Handler, method: str) -> None:
        with self._lock:
            self.unknown_requests.append((method, h.path))
        self._send_json(h, method, 404, {"error": f"LocalHub: no route for {method} {h.path}"})

    def _send_error(self, h: _Handler, method: str, status: int, code: str | None, message: str,
                    *, commit: str | None = None) -> None:
        extra = {"X-Error-Message": message}
        if code is not None:
            extra["X-Error-Code"] = code
        if commit is not None:
            extra["X-Repo-Commit"] = commit
        self._send_json(h, method, status, {"error": message}, extra)

    def _send_json(self, h: _Handler, method: str, status: int, payload: Any,
                   headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)
