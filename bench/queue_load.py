"""Load on the device queue: does a real server give the serial images under parallel load, and refuse
(503 + Retry-After) rather than pile up past its queue size? Not a speed benchmark: tiny models.

    .venv/bin/python bench/queue_load.py [--requests 48] [--parallel 8] [--burst 40]

1. Starts ``launch.py --nowebui`` on a fresh data folder with two tiny SD1.5 checkpoints (built with
   random weights by tests/support/tiny_models.py).
2. Runs ``--requests`` mixed jobs (txt2img and img2img on both checkpoints, extras) one after another,
   then the same jobs ``--parallel`` at a time, and compares every image's pixels.
3. Sends ``--burst`` slow jobs at once: past the queue size (16) they must get 503 with Retry-After,
   and every accepted one must finish; then one more job must succeed.
Prints one JSON line with the figures; exits 1 when an image differs or a promise breaks.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.harness import free_port  # noqa: E402
from tests.support.tiny_models import save_sd15_folder  # noqa: E402


def _png(seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def mixed_jobs(count: int) -> list[tuple[str, dict]]:
    """``count`` jobs cycling through txt2img, img2img and extras on two checkpoints."""
    jobs = []
    for n in range(count):
        model = {"override_settings": {"sd_model_checkpoint": "tiny-b" if n % 2 else "tiny-a"}}
        base = {"prompt": f"a teapot {n}", "steps": 2, "width": 64, "height": 64, "seed": 1000 + n, **model}
        kind = n % 3
        if kind == 0:
            jobs.append(("txt2img", base))
        elif kind == 1:
            jobs.append(("img2img", {**base, "init_images": [_png(n)], "denoising_strength": 0.6}))
        else:
            jobs.append(("extra-single-image", {"image": _png(n), "upscaler_1": "Lanczos", "upscaling_resize": 2}))
    return jobs


def _digest(url: str, route: str, body: dict) -> str:
    response = httpx.post(f"{url}/sdapi/v1/{route}", json=body, timeout=600)
    response.raise_for_status()
    data = response.json()
    images = data.get("images") or [data["image"]]
    pixels = [np.asarray(Image.open(io.BytesIO(base64.b64decode(i))).convert("RGB")).tobytes() for i in images]
    return hashlib.sha256(b"".join(pixels)).hexdigest()


def _wait_up(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/sdapi/v1/progress", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not answer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--burst", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atelier-load-") as tmp:
        data = Path(tmp)
        models = data / "models" / "Stable-diffusion"
        save_sd15_folder(models / "tiny-a", seed=0)
        save_sd15_folder(models / "tiny-b", seed=7)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        server = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--nowebui", "--port", str(port),
                                   "--data-dir", str(data)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            _wait_up(url, server)
            return run(url, args)
        finally:
            server.terminate()
            server.wait(30)


def run(url: str, args: argparse.Namespace) -> int:
    jobs = mixed_jobs(args.requests)
    started = time.perf_counter()
    serial = [_digest(url, route, body) for route, body in jobs]
    serial_s = time.perf_counter() - started

    deepest = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            deepest[0] = max(deepest[0], httpx.get(f"{url}/sdapi/v1/progress", timeout=10).json()["queue_size"])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.parallel) as pool:
        parallel = list(pool.map(lambda job: _digest(url, *job), jobs))
    parallel_s = time.perf_counter() - started
    stop.set()
    watcher.join()
    differing = sum(a != b for a, b in zip(serial, parallel, strict=True))

    slow = {"prompt": "a slow teapot", "steps": 30, "width": 64, "height": 64, "seed": 5}
    with ThreadPoolExecutor(args.burst) as pool:
        burst = list(pool.map(lambda _: httpx.post(f"{url}/sdapi/v1/txt2img", json=slow, timeout=900),
                              range(args.burst)))
    accepted = sum(r.status_code == 200 for r in burst)
    refused = [r for r in burst if r.status_code == 503]
    other = [r.status_code for r in burst if r.status_code not in (200, 503)]
    retry_after_ok = all(int(r.headers.get("Retry-After", "0")) >= 1 for r in refused)
    after = httpx.post(f"{url}/sdapi/v1/txt2img", json=slow, timeout=600).status_code
    figures = {"requests": len(jobs), "parallel": args.parallel, "serial_s": round(serial_s, 2),
               "parallel_s": round(parallel_s, 2), "images_differing": differing, "deepest_queue": deepest[0],
               "burst": args.burst, "burst_accepted": accepted, "burst_refused_503": len(refused),
               "burst_other_status": other, "retry_after_on_every_503": retry_after_ok, "job_after_burst": after}
    print(json.dumps(figures))
    ok = differing == 0 and not other and retry_after_ok and after == 200 and accepted + len(refused) == args.burst
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
