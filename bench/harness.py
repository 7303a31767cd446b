"""What every Atelier benchmark needs, whatever mode it times.

* a quiet, offline, fixed-thread environment (set before torch or gradio are imported);
* timing: :class:`Series` of wall/CPU seconds, interleaved rounds of :class:`Contender` s;
* load average, CPU seconds of another process;
* :class:`ServerProcess`: a Gradio app in a child process that can be frozen (SIGSTOP) while
  in-process baselines run, and the child-side helpers (:func:`die_with_parent`,
  :func:`announce_and_wait`);
* reading results of a Gradio event (through gradio_client or plain HTTP) whatever its outputs
  are: the gallery is found by its type, not its position;
* pixel comparison of the contenders' images.

Nothing here imports torch, gradio or numpy at import time.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
URL_MARKER = "BENCH-URL "
IMAGE_SUFFIXES = (".png", ".webp", ".jpg", ".jpeg")


# ------------------------------------------------------------------------------ environment
def quiet_environment(threads: int, tmp: Path) -> None:
    """Set before torch/gradio are imported: thread pools, no telemetry, no network."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(tmp / "gradio-tmp")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def silence_libraries() -> None:
    """Warnings and INFO logs of Atelier, diffusers, transformers, gradio and uvicorn off."""
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    for name in ("pipelines", "webui", "httpx", "gradio", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    try:
        import diffusers
        import transformers

        diffusers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except Exception:  # pragma: no cover - logging tweaks only
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_avg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of another process, from /proc (10 ms ticks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


# ----------------------------------------------------------------------------------- timing
@dataclass
class Series:
    """Timed runs of one contender: wall and process-CPU seconds."""

    label: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def min(self) -> float:
        return min(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "median_s": self.median, "min_s": self.min, "cpu_median_s": self.cpu_median,
                "wall_s": self.wall, "cpu_s": self.cpu}


def now() -> tuple[float, float]:
    # process_time counts every thread of this process (server, client, job thread alike), so
    # "cpu" shows the work done, less disturbed by other processes than wall time.
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = now()
    return wall - start[0], cpu - start[1]


def median_ms(fn: Callable[[], Any], n: int) -> float:
    """Median wall milliseconds of ``n`` calls of ``fn``."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


Timings = dict[str, tuple[float, float]]


@dataclass
class Contender:
    """One way of producing the image; ``run`` returns {series key: (wall, cpu)} and the image."""

    key: str
    run: Callable[[], tuple[Timings, Any]]
    images: list[Any] = field(default_factory=list)


def run_rounds(contenders: Sequence[Contender], series: dict[str, Series], *, warmup: int,
               repeats: int) -> list[dict[str, float]]:
    """Warm-up runs, then ``repeats`` interleaved rounds whose order rotates every round.

    Every run's image is kept on its contender; every timing goes to ``series``. Returns each
    round's wall seconds per series key (for paired ratios).
    """
    contenders = list(contenders)
    for _ in range(warmup):
        for c in contenders:
            gc.collect()
            _, image = c.run()
            c.images.append(image)
    rounds = []
    for r in range(repeats):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        line = []
        for c in order:
            gc.collect()
            timings, image = c.run()
            c.images.append(image)
            for key, (wall, cpu) in timings.items():
                series[key].add(wall, cpu)
                line.append(f"{key} {wall:.2f}")
        rounds.append({k: s.wall[-1] for k, s in series.items()})
        print(f"  round {r + 1}/{repeats}: " + ", ".join(line) + f"  (load {load_avg()[:1]})", flush=True)
    return rounds


# ----------------------------------------------------------------------------- same image?
def max_abs_diff(a, b) -> int:
    """Largest per-channel difference of two PIL images (10**6 when their sizes differ)."""
    import numpy as np

    x = np.asarray(a.convert("RGB"), dtype=np.int16)
    y = np.asarray(b.convert("RGB"), dtype=np.int16)
    if x.shape != y.shape:
        return 10**6
    return int(np.abs(x - y).max())


def identity(reference: Any, contenders: Sequence[Contender]) -> tuple[dict[str, int], int, str]:
    """Worst pixel difference of each contender's images against ``reference``; the worst; a verdict."""
    diffs = {c.key: max(max_abs_diff(reference, im) for im in c.images) for c in contenders}
    worst = max(diffs.values())
    verdict = "pixel-identical" if worst == 0 else ("max abs diff <= 1" if worst <= 1 else "DIFFERENT")
    return diffs, worst, verdict


# ------------------------------------------------------------------------ Gradio results
def gallery_output(outputs: Any) -> Any:
    """The gallery among an event's outputs, found by type: the first list-valued output.

    Works for gradio_client results (a tuple of outputs) and for the ``data`` of a plain-HTTP
    ``complete`` event (a list of outputs) alike, whatever the other outputs are (a live-preview
    image is a path or a file dict, the infotext a string, the seed a number).
    """
    if not isinstance(outputs, (list, tuple)):
        return outputs  # a single-output event returns the output itself
    for value in outputs:
        if isinstance(value, (list, tuple)):
            return value
    return None


def image_path(value: Any) -> str | None:
    """First image file path inside a gradio_client result (gallery shapes differ by version)."""
    if isinstance(value, str):
        return value if value.lower().endswith(IMAGE_SUFFIXES) and os.path.exists(value) else None
    if isinstance(value, dict):
        for key in ("image", "path", "name", "value"):
            found = image_path(value.get(key)) if key in value else None
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            found = image_path(item)
            if found:
                return found
    return None


def image_url(gallery: Any) -> str | None:
    """URL of the first image in a gallery as the plain-HTTP API returns it (file dicts with ``url``)."""
    for item in gallery or ():
        file = item.get("image", item) if isinstance(item, dict) else None
        if isinstance(file, dict) and file.get("url"):
            return file["url"]
    return None


def call_over_http(http: Any, api_name: str, data: list[Any]) -> Any:
    """Gradio's documented two-step call on an ``httpx.Client``: POST the inputs, read the SSE stream.

    Returns the ``data`` of the ``complete`` event (the list of outputs).
    """
    path = f"/gradio_api/call/{api_name.strip('/')}"
    event_id = http.post(path, json={"data": data}).raise_for_status().json()["event_id"]
    event, final = None, None
    with http.stream("GET", f"{path}/{event_id}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "complete":
                final = json.loads(line[5:])
    assert final is not None, f"{path} ended with {event!r}"
    return final


# ---------------------------------------------------------------------------- server child
def die_with_parent() -> None:
    """Linux: get SIGKILL if the benchmark dies (even while frozen with SIGSTOP), so no child lingers."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def announce_and_wait(url: str) -> None:
    """Child side of :class:`ServerProcess`: tell the parent the URL, serve until it closes our stdin."""
    print(URL_MARKER + url, flush=True)
    sys.stdin.read()


class ServerProcess:
    """A child process serving a Gradio app; can be frozen while the baselines run.

    ``cmd`` runs in the repository root; the child prints its URL with :func:`announce_and_wait`.
    """

    def __init__(self, cmd: list[str], *, log_path: Path, freeze: bool = True) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.freeze_enabled = freeze
        self.frozen = False
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True)
        self.url = ""

    def wait_url(self) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(URL_MARKER):
                self.url = line[len(URL_MARKER):].strip()
                return self.url
        self._log.flush()
        tail = self.log_path.read_text()[-3000:]
        raise RuntimeError(f"the server process exited ({self.proc.poll()}) before serving:\n{tail}")

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def freeze(self) -> None:
        if self.freeze_enabled and not self.frozen and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.frozen = True

    def thaw(self) -> None:
        if self.frozen and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    def idle_cpu_ms_per_s(self) -> float:
        """CPU milliseconds the (thawed) idle server burns in one second; leaves it frozen."""
        self.thaw()
        before = self.cpu()
        time.sleep(1.0)
        idle = (self.cpu() - before) * 1e3
        self.freeze()
        return idle

    def settle(self, *, window: float = 0.1, limit: float = 2.0) -> float:
        """Wait (untimed) until the server has finished what it does after answering; its CPU seconds."""
        start = self.cpu()
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            before = self.cpu()
            time.sleep(window)
            if self.cpu() - before <= 0.011:  # at most one 10 ms tick in the window: idle polling only
                break
        return self.cpu() - start

    def close(self) -> None:
        self.thaw()
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()  # our own child, by its handle
                self.proc.wait(timeout=5)
        self._log.close()
