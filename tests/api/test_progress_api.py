"""progress / interrupt / skip while jobs run, and a UI job and an API job at the same time."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from tests.support.api import API_USER, FAST, UI_USER
from tests.support.ui_client import Client

UI_FORM = dict(checkpoint="tiny-sd15", prompt="a teapot", negative_prompt="", sampler_name="Euler a",
               scheduler="Automatic", steps=4, cfg_scale=7, width=64, height=64, seed=9, batch_size=1, n_iter=1)


class Background:
    """An HTTP request in a thread, so the test can poll /progress meanwhile."""

    def __init__(self, call: Callable[[], httpx.Response]) -> None:
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], httpx.Response]) -> None:
        try:
            self.response = call()
        except BaseException as exc:  # reported by result()
            self.error = exc

    def result(self, timeout: float = 180) -> httpx.Response:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "request did not finish"
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


def _post_txt2img(api_app, **fields) -> Background:
    url = api_app["url"] + "sdapi/v1/txt2img"
    return Background(lambda: httpx.post(url, json={**FAST, **fields}, auth=API_USER, timeout=180))


def _wait_for(api, condition: Callable[[dict], bool], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        progress = api.get("/progress").json()
        assert time.monotonic() - started < 5, "/progress must answer at once while a job runs"
        if condition(progress):
            return progress
        assert time.monotonic() < deadline, f"condition never met; last progress {progress}"
        time.sleep(0.02)


def _idle(api) -> dict:
    return _wait_for(api, lambda p: p["state"]["job_count"] == 0)


def test_idle_progress_is_zero(api):
    body = _idle(api)
    assert body["progress"] == 0 and body["eta_relative"] == 0 and body["current_image"] is None
    assert body["state"]["job_count"] == 0 and body["state"]["sampling_steps"] == 0


def test_progress_mid_job_follows_a1111s_formula_with_a_live_preview(api, api_app):
    _idle(api)
    job = _post_txt2img(api_app, steps=150, n_iter=2, seed=21)
    try:
        body = _wait_for(api, lambda p: p["state"]["sampling_step"] >= 4 and p["current_image"])
        state = body["state"]
        expected = 0.01 + state["job_no"] / state["job_count"] + state["sampling_step"] / state["sampling_steps"] / 2
        assert state["job"] == "txt2img" and state["job_count"] == 2 and state["sampling_steps"] == 150
        assert body["progress"] == pytest.approx(expected, abs=0.05) and 0.01 < body["progress"] < 1
        assert body["eta_relative"] > 0 and len(state["job_timestamp"]) == 14
        preview = Image.open(io.BytesIO(base64.b64decode(body["current_image"])))
        assert preview.format == "PNG" and preview.size == (64, 64)
        assert api.get("/progress", params={"skip_current_image": True}).json()["current_image"] is None
    finally:
        assert api.post("/interrupt").json() == {}
    response = job.result()
    assert response.status_code == 200
    info = json.loads(response.json()["info"])
    assert len(response.json()["images"]) == 1 and info["all_seeds"] == [21]  # the 2nd batch never ran
    assert _idle(api)["progress"] == 0


def test_skip_cuts_the_current_image_and_the_batch_goes_on(api, api_app):
    _idle(api)
    job = _post_txt2img(api_app, steps=150, n_iter=2, seed=31)
    _wait_for(api, lambda p: p["state"]["job_no"] == 0 and p["state"]["sampling_step"] >= 2)
    assert api.post("/skip").json() is None
    _wait_for(api, lambda p: p["state"]["job_no"] == 1 or p["state"]["job_count"] == 0)
    api.post("/interrupt")  # no need to wait for the second image's 150 steps
    response = job.result()
    assert response.status_code == 200
    assert json.loads(response.json()["info"])["all_seeds"] == [31, 32]  # both images were made


def test_interrupt_and_skip_when_idle_are_harmless(api):
    _idle(api)
    assert api.post("/interrupt").json() == {}
    assert api.post("/skip").json() is None
    assert api.post("/txt2img", json=FAST).status_code == 200  # nothing left over for the next job


def test_a_ui_job_and_an_api_job_at_the_same_time_both_succeed(api, api_app):
    """They share the engine's device lock: one waits for the other; /progress shows the running one."""
    _idle(api)
    engine = api_app["ctx"].engine
    client = Client(api_app["url"], auth=UI_USER, verbose=False)
    ui_job = client.submit(**{**UI_FORM, "steps": 60, "seed": 41}, api_name="/txt2img")
    _wait_for(api, lambda p: p["state"]["sampling_step"] >= 1)
    api_job = _post_txt2img(api_app, steps=60, seed=42)
    saw_both = False
    deadline = time.monotonic() + 120
    while not ui_job.done() or api_job._thread.is_alive():
        progress = api.get("/progress").json()
        saw_both = saw_both or (engine.pending == 2 and progress["state"]["job_count"] == 1)
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert saw_both, "the two jobs never overlapped"
    gallery, ui_info = ui_job.result(timeout=60)
    assert len(gallery) == 1 and "Seed: 41" in ui_info and "Steps: 60" in ui_info
    response = api_job.result()
    assert response.status_code == 200
    assert json.loads(response.json()["info"])["all_seeds"] == [42]
    assert _idle(api)["progress"] == 0


def test_api_sees_a_ui_job_but_only_its_page_can_interrupt_it(api, api_app):
    """As in A1111, /progress shows the one running job whoever started it; but Interrupt reaches only the
    owner's jobs (issue 12): an API client's press leaves the page's job running, the page's own stops it."""
    _idle(api)
    client = Client(api_app["url"], auth=UI_USER, verbose=False)
    ui_job = client.submit(**{**UI_FORM, "steps": 150, "n_iter": 3, "seed": 51}, api_name="/txt2img")
    body = _wait_for(api, lambda p: p["state"]["sampling_step"] >= 2)
    assert body["state"]["job_count"] == 3 and body["state"]["sampling_steps"] == 150
    assert body["running_is_yours"] is False and body["current_image"] is None  # another's preview is not shown
    assert api.post("/interrupt").json() == {}  # not this client's job
    step = api.get("/progress").json()["state"]["sampling_step"]
    after = _wait_for(api, lambda p: p["state"]["sampling_step"] >= step + 3 or p["state"]["job_no"] > 0)
    assert not after["state"]["interrupted"]
    client.predict(api_name="/interrupt")  # the page's own Interrupt (its Gradio session)
    gallery, info = ui_job.result(timeout=120)
    assert len(gallery) == 1 and "Seed: 51" in info  # stopped in the first of three batches
    assert _idle(api)["progress"] == 0
