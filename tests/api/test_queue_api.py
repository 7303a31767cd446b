"""The one device queue under load (issue 12): concurrent requests give exactly the serial results, a full
queue answers 503 with Retry-After, each waiting job knows its place, Interrupt reaches only the job it
names, and a closed page's waiting job leaves the queue."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support.api import API_USER, FAST, UI_USER
from tests.support.ui_client import Client

UI_FORM = dict(checkpoint="tiny-sd15", prompt="a kettle", negative_prompt="", sampler_name="Euler a",
               scheduler="Automatic", steps=2, cfg_scale=7, width=64, height=64, seed=5, batch_size=1, n_iter=1)
LONG = {**FAST, "steps": 150, "n_iter": 8}  # a job that runs until the test interrupts it


def _png(color_seed: int) -> str:
    pixels = np.random.default_rng(color_seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _pixels(b64: str) -> bytes:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")).tobytes()


# Mixed jobs on two checkpoints: each request names its model, so the jobs swap models in any order.
MIXED: list[tuple[str, dict]] = [
    ("txt2img", {**FAST, "steps": 2, "seed": 101}),
    ("img2img", {**FAST, "steps": 2, "seed": 102, "init_images": [_png(1)], "denoising_strength": 0.6}),
    ("extra-single-image", {"image": _png(2), "upscaler_1": "Lanczos", "upscaling_resize": 2}),
    ("txt2img", {**FAST, "steps": 2, "seed": 103, "override_settings": {"sd_model_checkpoint": "tiny-sd15-b"}}),
    ("txt2img", {**FAST, "steps": 2, "seed": 104, "batch_size": 2}),
    ("img2img", {**FAST, "steps": 2, "seed": 105, "init_images": [_png(3)], "denoising_strength": 0.5,
                 "override_settings": {"sd_model_checkpoint": "tiny-sd15-b"}}),
    ("extra-batch-images", {"imageList": [{"data": _png(4), "name": "a.png"}], "upscaler_1": "Nearest",
                            "upscaling_resize": 2}),
    ("txt2img", {**FAST, "steps": 2, "seed": 106, "prompt": "a [teapot:kettle:0.5]"}),
]


def _images(base: str, route: str, body: dict) -> list[bytes]:
    """The request's images as pixel bytes."""
    response = httpx.post(f"{base}/sdapi/v1/{route}", json=body, auth=API_USER, timeout=300)
    assert response.status_code == 200, response.text
    data = response.json()
    found = data.get("images") or ([data["image"]] if data.get("image") else [])
    assert found, f"{route} returned no image"
    return [_pixels(image) for image in found]


@pytest.fixture
def base(api_app) -> str:
    return api_app["url"].rstrip("/")


def _wait(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _progress(api: httpx.Client, **params) -> dict:
    return api.get("/progress", params=params).json()


def test_concurrent_mixed_requests_give_exactly_the_serial_images(api, base):
    serial = [_images(base, route, body) for route, body in MIXED]
    with ThreadPoolExecutor(len(MIXED)) as pool:  # all at once: they queue for the device
        futures = [pool.submit(_images, base, route, body) for route, body in MIXED]
        concurrent = [future.result(timeout=300) for future in futures]
    for (route, _), alone, together in zip(MIXED, serial, concurrent, strict=True):
        assert together == alone, f"{route}: a concurrent run changed the images"
    assert _progress(api)["queue_size"] == 0


def _start(pool: ThreadPoolExecutor, base: str, body: dict) -> Future:
    return pool.submit(lambda: httpx.post(f"{base}/sdapi/v1/txt2img", json=body, auth=API_USER, timeout=300))


def test_full_queue_503_places_and_interrupt_by_task_id(api, api_app, base):
    queue = api_app["ctx"].engine.queue
    queue.max_waiting, saved = 1, queue.max_waiting  # the setting, made small for the test
    try:
        with ThreadPoolExecutor(2) as pool:
            running = _start(pool, base, {**LONG, "force_task_id": "task-a"})
            _wait(lambda: _progress(api, id_task="task-a")["running_is_yours"], "task-a to run")
            waiting = _start(pool, base, {**FAST, "force_task_id": "task-b"})
            _wait(lambda: _progress(api, id_task="task-b")["queue_position"] == 1, "task-b to wait")
            assert _progress(api)["queue_size"] == 1

            full = api.post("/txt2img", json=FAST)
            assert full.status_code == 503 and full.json()["error"] == "QueueFullError"
            assert "queue is full" in full.json()["detail"] and int(full.headers["Retry-After"]) >= 1

            api.post("/interrupt", params={"id_task": "task-b"})  # only the waiting one
            cancelled = waiting.result(timeout=60)
            assert cancelled.status_code == 409 and "cancelled" in cancelled.json()["detail"]
            still = _progress(api, id_task="task-a")
            assert still["running_is_yours"] and not still["state"]["interrupted"]

            api.post("/interrupt", params={"id_task": "task-a"})
            done = running.result(timeout=120)
            assert done.status_code == 200 and done.json()["images"]  # its image so far is returned
    finally:
        queue.max_waiting = saved
    assert _progress(api)["queue_size"] == 0 and api.post("/txt2img", json=FAST).status_code == 200


def test_a_waiting_page_sees_its_place_and_closing_it_frees_the_queue(api, api_app, base, monkeypatch):
    # The server notices a closed heartbeat stream when it next writes to it: every second here, not 15 s.
    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "1")
    with ThreadPoolExecutor(1) as pool:
        blocker = _start(pool, base, {**LONG, "force_task_id": "blocker"})
        _wait(lambda: _progress(api, id_task="blocker")["running_is_yours"], "the blocker to run")
        page = Client(api_app["url"], auth=UI_USER, verbose=False)
        job = page.submit(**UI_FORM, api_name="/txt2img")

        def told_its_place() -> bool:
            units = job.status().progress_data or []
            return any("number 1 of 1 in the queue" in (unit.desc or "") for unit in units)

        _wait(told_its_place, "the page to be told its place in the queue")
        assert _progress(api)["queue_size"] == 1
        assert _progress(api)["queue_position"] is None  # the API caller has nothing waiting
        page.close()  # the tab closes: Gradio's heartbeat ends and the unload event runs
        _wait(lambda: _progress(api)["queue_size"] == 0, "the closed page's job to leave the queue", timeout=30)
        assert _progress(api, id_task="blocker")["running_is_yours"]  # the running job goes on
        api.post("/interrupt", params={"id_task": "blocker"})
        assert blocker.result(timeout=120).status_code == 200
