"""The speed benchmark's child processes: Atelier as users start it, and raw diffusers from a cold start.

* :class:`AtelierServer`: ``launch.py`` (``--api`` for the UI and the API, or ``--nowebui``) with its own
  fresh data folder, the checkpoint's folder as ``--ckpt-dir`` and ``--ckpt NAME``, plus any launch flags
  (``--channels-last``, ...). Jobs go through A1111's ``POST /sdapi/v1/txt2img``; the time runs from the
  request to the decoded image. It can be frozen (SIGSTOP) while other contenders run, so its idle
  threads cost them nothing.
* :func:`first_image_after_start`: spawn a server and post the job until it is answered: the time from
  the spawn to the image, model load (and whatever Atelier does first, such as hashing) included.
* :func:`raw_first_image`: the same for raw diffusers (``bench/speed_raw.py`` in a fresh process).
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import REPO_ROOT, Contender, Timings, die_with_parent, free_port, now, proc_cpu, since
from bench.speed_raw import DONE_MARKER, Job, job_json


def child_env(threads: int, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", GRADIO_ANALYTICS_ENABLED="False", TOKENIZERS_PARALLELISM="false",
               GRADIO_TEMP_DIR=str(tmp / "gradio-tmp"), PYTHONUNBUFFERED="1")
    return env


def decode_image(b64: str):
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


class AtelierServer:
    """``launch.py`` in a child process with a fresh data folder; REST jobs; freeze/thaw; close."""

    def __init__(self, *, model_name: str, ckpt_parent: Path, data_dir: Path, threads: int, webui: bool,
                 flags: tuple[str, ...] = ()) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.model_name = model_name
        self.log_path = data_dir / "server.log"
        self._log = self.log_path.open("w")
        cmd = [sys.executable, str(REPO_ROOT / "launch.py"), "--skip-install", "--data-dir", str(data_dir),
               "--ckpt-dir", str(ckpt_parent), "--ckpt", model_name, "--threads", str(threads),
               "--port", str(self.port), "--log-level", "WARNING", *(["--api"] if webui else ["--nowebui"]), *flags]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=child_env(threads, data_dir),
                                     preexec_fn=die_with_parent)
        self.frozen = False
        import httpx

        self.http = httpx.Client(base_url=self.url, timeout=None)

    # ------------------------------------------------------------------------------- jobs
    def txt2img(self, job: Job, overrides: dict[str, Any] | None = None, *, wait_up: bool = False):
        """``(seconds, image)`` of one REST job; ``wait_up`` retries until the server listens (not timed
        separately: the caller's clock started at the spawn)."""
        import httpx

        body = job.rest_body(self.model_name, overrides)
        while True:
            start = time.perf_counter()
            try:
                answer = self.http.post("/sdapi/v1/txt2img", json=body)
                break
            except httpx.TransportError:
                if not wait_up or self.proc.poll() is not None:
                    raise RuntimeError(f"Atelier server not answering ({self.proc.poll()}):\n{self.tail()}") from None
                time.sleep(0.05)
        if answer.status_code != 200:
            raise RuntimeError(f"/sdapi/v1/txt2img answered {answer.status_code}: {answer.text[:2000]}")
        image = decode_image(answer.json()["images"][0])
        return time.perf_counter() - start, image

    def wait_up(self, limit: float = 600.0) -> float:
        """Seconds from the spawn until the API answers (untimed set-up for warm rows); returns once the
        server is idle."""
        import httpx

        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Atelier server exited ({self.proc.poll()}):\n{self.tail()}")
            try:
                if self.http.get("/sdapi/v1/samplers").status_code == 200:
                    up = time.perf_counter() - self.started
                    # launch.py warms imports up in a thread once serving: let it finish before any timing
                    self.settle(window=0.5, limit=120.0)
                    return up
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Atelier server not up after {limit:.0f}s:\n{self.tail()}")

    def option_keys(self) -> set[str]:
        return set(self.http.get("/sdapi/v1/options").raise_for_status().json())

    def tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    # ---------------------------------------------------------------------------- process
    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def settle(self, *, window: float = 0.1, limit: float = 2.0) -> None:
        """Wait (untimed) until the server has finished what it does after answering."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            before = self.cpu()
            time.sleep(window)
            if self.cpu() - before <= max(0.011, 0.1 * window):  # one 10 ms tick, or under 10% of a core: idle
                return

    def freeze(self) -> None:
        if not self.frozen and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.frozen = True

    def thaw(self) -> None:
        if self.frozen and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    def close(self) -> None:
        self.thaw()
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()  # our own child, by its handle
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def first_image_after_start(*, model_name: str, ckpt_parent: Path, data_dir: Path, threads: int, job: Job,
                            webui: bool = False, flags: tuple[str, ...] = ()) -> tuple[float, Any, dict[str, float]]:
    """Spawn a server (fresh data folder: no hash cache) and time spawn -> first image; the server is closed.
    The split: until the server took the request (imports, ``--ckpt`` load, serving) and the first job."""
    server = AtelierServer(model_name=model_name, ckpt_parent=ckpt_parent, data_dir=data_dir, threads=threads,
                           webui=webui, flags=flags)
    try:
        job_s, image = server.txt2img(job, wait_up=True)
        total = time.perf_counter() - server.started
        return total, image, {"until_serving_s": total - job_s, "first_job_s": job_s}
    finally:
        server.close()


def raw_first_image(*, folder: Path, out: Path, threads: int, job: Job) -> tuple[float, Any, dict[str, float]]:
    """Spawn ``bench.speed_raw`` and time spawn -> image written; its own split (import, load, generate)."""
    from PIL import Image

    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bench.speed_raw", "--model", str(folder), "--out", str(out),
                             "--job", job_json(job), "--threads", str(threads)], cwd=REPO_ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(threads, out.parent), preexec_fn=die_with_parent)
    assert proc.stdout is not None
    split = None
    for line in proc.stdout:
        if line.startswith(DONE_MARKER):
            split = json.loads(line[len(DONE_MARKER):])
            break
    elapsed = time.perf_counter() - start
    _, err = proc.communicate(timeout=120)
    if split is None:
        raise RuntimeError(f"raw diffusers process failed ({proc.returncode}):\n{err[-3000:]}")
    image = Image.open(out)
    image.load()
    return elapsed, image, split


def rest_contender(server: AtelierServer, job: Job, key: str, overrides: dict[str, Any] | None = None) -> Contender:
    """One REST job on ``server`` (thawed for it); CPU = this client's + the server process's."""
    def run() -> tuple[Timings, Any]:
        server.thaw()
        start, server_cpu = now(), server.cpu()
        _, image = server.txt2img(job, overrides)
        wall, cpu = since(start)
        cpu += server.cpu() - server_cpu
        server.settle()
        server.freeze()
        return {key: (wall, cpu)}, image
    return Contender(key, run)
