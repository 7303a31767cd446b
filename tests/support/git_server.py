"""Git repositories the tests build and serve over HTTP on 127.0.0.1 (git's "dumb" HTTP protocol:
plain files after ``git update-server-info``), so installs are real clones without the internet."""

from __future__ import annotations

import functools
import json
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

IDENTITY = ["-c", "user.name=Atelier Tests", "-c", "user.email=tests@atelier.invalid", "-c", "init.defaultBranch=main",
            "-c", "commit.gpgsign=false"]

EXTENSION_PY = '''"""A tiny extension made by the tests."""

api_version = 1


def register(ctx):
    pass
'''


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class ExtensionRepo:
    """A working copy and the bare repository it pushes to, served under ``<server>/<name>.git``."""

    def __init__(self, root: Path, name: str, files: dict[str, str] | None = None) -> None:
        self.name = name
        self.work = root / f"{name}-work"
        self.bare = root / "served" / f"{name}.git"
        self.work.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=self.work)
        self.commit(files or {"extension.py": EXTENSION_PY}, "first version", push=False)
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        git("clone", "-q", "--bare", str(self.work), str(self.bare), cwd=root)
        git("update-server-info", cwd=self.bare)
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    def commit(self, files: dict[str, str], message: str, *, push: bool = True) -> str:
        for path, text in files.items():
            (self.work / path).parent.mkdir(parents=True, exist_ok=True)
            (self.work / path).write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        if push:
            git("push", "-q", "origin", "main", cwd=self.work)
            git("update-server-info", cwd=self.bare)
        return git("rev-parse", "HEAD", cwd=self.work).strip()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass


class StaticServer:
    """Serves a folder over HTTP on 127.0.0.1 (a context manager): git repos and index files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="test-http")

    def __enter__(self) -> StaticServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def repo_url(self, repo: ExtensionRepo) -> str:
        return f"{self.url}/{repo.bare.name}"

    def put_json(self, name: str, data: object) -> str:
        (self.root / name).write_text(json.dumps(data))
        return f"{self.url}/{name}"
