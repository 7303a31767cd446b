"""``--ray local:2`` end to end: a local Ray cluster with two CPU engine replicas serving the UI and the REST API,
on the tiny models (one module-wide cluster; about a minute of start-up on 2 cores).

Concurrent UI and API jobs give exactly the embedded mode's images, saved in the front's outputs and History;
Interrupt reaches the replica running the caller's job and no other; jobs go to the replica that holds their
checkpoint (GET /atelier/v1/cluster); a replica killed mid-job fails that job with a clear 503 and the next job
runs on a live replica. The kill comes last: Serve restarts the replica meanwhile.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from pipelines.context import AppContext
from pipelines.history.records import HistoryQuery
from tests.support.apps import free_port, install_models, make_settings
from tests.support.ui_client import Client

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ray = pytest.importorskip("ray")  # the test command installs it (requirements-ray.txt); absent: say so

MODELS = ["tiny-sd15", "tiny-sd15-b"]
JOB = dict(prompt="a lighthouse at dusk", negative_prompt="", sampler_name="Euler", steps=3, cfg_scale=7,
           width=64, height=64, seed=41, batch_size=2, n_iter=1, save_images=True)
UI_FORM = dict(checkpoint="tiny-sd15", prompt="a red kite", negative_prompt="", sampler_name="Euler a",
               scheduler="Automatic", steps=4, cfg_scale=7, width=64, height=64, seed=19, batch_size=1, n_iter=1)


@pytest.fixture(scope="module")
def cluster_app(tmp_path_factory, model_store):
    """The front process (UI + API) on a ``local:2`` cluster of one-core replicas; its data folder."""
    from pipelines.cluster.deploy import start_cluster
    from pipelines.cluster.target import parse_target
    from webui.api import ApiConfig
    from webui.server import serve

    data_dir = tmp_path_factory.mktemp("cluster-data")
    install_models(model_store, data_dir, MODELS)
    ctx = AppContext.build(make_settings(data_dir, initial_model="tiny-sd15"))
    cluster = start_cluster(parse_target("local:2", cpus_per_replica=1), ctx.settings)
    try:
        ctx.engine.attach_remote(cluster)
        demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), block=False, api=ApiConfig())
        try:
            yield {"url": url, "ctx": ctx, "data_dir": data_dir, "cluster": cluster}
        finally:
            demo.close()
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, model_store) -> AppContext:
    """The same models and settings run embedded (no Ray): the images the cluster must reproduce."""
    data_dir = tmp_path_factory.mktemp("embedded-data")
    install_models(model_store, data_dir, MODELS)
    return AppContext.build(make_settings(data_dir, initial_model="tiny-sd15"))


def api(app: dict, path: str, body: dict | None = None, *, post: bool = False, timeout: float = 300) -> httpx.Response:
    if body is not None or post:
        return httpx.post(app["url"].rstrip("/") + path, json=body, timeout=timeout)
    return httpx.get(app["url"].rstrip("/") + path, timeout=timeout)


def pixels(image: Image.Image | str | Path) -> np.ndarray:
    return np.asarray(Image.open(image).convert("RGB") if not isinstance(image, Image.Image) else image.convert("RGB"))


def decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def embedded_images(ctx: AppContext, body: dict, model: str, mode: str = "txt2img") -> list[Image.Image]:
    """The embedded engine's images for the API body (through the same API request builder)."""
    from fastapi.testclient import TestClient

    from webui.api import ApiConfig, create_api_app

    with TestClient(create_api_app(ctx, ApiConfig())) as client:
        answer = client.post(f"/sdapi/v1/{mode}", json={**body, "override_settings": {"sd_model_checkpoint": model}})
    assert answer.status_code == 200, answer.text
    return [decoded(b) for b in answer.json()["images"]]


def placements(app: dict) -> list[dict]:
    status = api(app, "/atelier/v1/cluster").json()
    assert status["mode"] == "ray" and status["replicas"] == 2
    return status["placements"]


def wait_until_idle(app: dict, within_s: float = 120.0) -> None:
    """Until no job runs or waits in the front (an earlier test's job that outlived a failure, say)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        progress = api(app, "/sdapi/v1/progress").json()
        if progress["queue_size"] == 0 and not any(p["outcome"] == "running" for p in placements(app)):
            return
        time.sleep(0.5)
    pytest.fail(f"the cluster was still busy after {within_s:.0f} s")


def test_concurrent_ui_and_api_jobs_give_the_embedded_images_saved_in_the_front(cluster_app, embedded, live_app):
    source = Image.fromarray((np.indices((64, 64)).sum(0) % 255).astype("uint8")).convert("RGB")
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")
    img2img = {**JOB, "init_images": [base64.b64encode(buffer.getvalue()).decode()], "denoising_strength": 0.6,
               "batch_size": 1}
    txt2img = {**JOB, "override_settings": {"sd_model_checkpoint": "tiny-sd15"}}
    img2img_b = {**img2img, "override_settings": {"sd_model_checkpoint": "tiny-sd15-b"}}
    with ThreadPoolExecutor(3) as pool:
        ui_job = Client(cluster_app["url"], verbose=False).submit(**UI_FORM, api_name="/txt2img_live")
        text_job = pool.submit(api, cluster_app, "/sdapi/v1/txt2img", txt2img)
        image_job = pool.submit(api, cluster_app, "/sdapi/v1/img2img", img2img_b)
        answers = [text_job.result(), image_job.result()]
        _preview, gallery, ui_info = ui_job.result(timeout=300)
    previews = [o for o in ui_job.outputs()[:-1] if isinstance(o[0], dict) and o[0].get("value")]
    assert previews  # the replica's live previews reached the page before the result
    assert [a.status_code for a in answers] == [200, 200], [a.text[:300] for a in answers]
    # the API's images are the embedded engine's, pixel for pixel, with the same infotext
    for answer, body, model, mode in ((answers[0], JOB, "tiny-sd15", "txt2img"),
                                      (answers[1], img2img, "tiny-sd15-b", "img2img")):
        got = [decoded(b) for b in answer.json()["images"]]
        want = embedded_images(embedded, body, model, mode)
        assert len(got) == len(want) == body["batch_size"]
        assert all(np.array_equal(pixels(g), pixels(w)) for g, w in zip(got, want, strict=True))
        assert [g.info.get("parameters") for g in got] == [w.info.get("parameters") for w in want]
    # the UI's image is the embedded app's for the same form, and its file is in the front's outputs and History
    embedded_client = Client(live_app["url"], verbose=False)
    reference, reference_info = embedded_client.predict(**UI_FORM, api_name="/txt2img")
    assert embedded_client.predict(api_name="/cluster_status").startswith("**Embedded**")
    assert ui_info == reference_info and "Model: tiny-sd15" in ui_info
    assert np.array_equal(pixels(gallery[0]["image"]), pixels(reference[0]["image"]))
    outputs = Path(cluster_app["data_dir"], "outputs")
    saved = sorted(outputs.rglob("*.png"))
    assert len(list((outputs / "txt2img-images").rglob("*.png"))) == 3  # the API's two and the UI's one
    assert len(list((outputs / "img2img-images").rglob("*.png"))) == 1
    assert any(Image.open(p).info["parameters"] == ui_info for p in saved)
    history = cluster_app["ctx"].history.search(HistoryQuery(text="lighthouse"))
    lighthouse = {p for p in saved if "lighthouse" in Image.open(p).info["parameters"]}
    assert len(lighthouse) >= 3 and {outputs / e.path for e in history.entries} == lighthouse  # with the grid, if saved
    ran_on = {p["replica_id"] for p in placements(cluster_app)[:3]}
    assert len(ran_on) == 2  # the three jobs ran side by side on both replicas


def test_interrupt_stops_only_the_callers_job_on_its_replica(cluster_app):
    long = {**JOB, "steps": 60, "batch_size": 1, "n_iter": 3, "save_images": False}
    wait_until_idle(cluster_app)  # no job of an earlier test still holds a replica
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(api, cluster_app, "/sdapi/v1/txt2img", {**long, "force_task_id": "stop-me"})
        second = pool.submit(api, cluster_app, "/sdapi/v1/txt2img", {**long, "force_task_id": "keep-me", "seed": 7})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # both running, each on its own replica, the first one stepping
            stop_me = api(cluster_app, "/sdapi/v1/progress?id_task=stop-me").json()
            keep_me = api(cluster_app, "/sdapi/v1/progress?id_task=keep-me").json()
            running = [p for p in placements(cluster_app) if p["outcome"] == "running"]
            if (len(running) == 2 and stop_me["running_is_yours"] and keep_me["running_is_yours"]
                    and stop_me["state"]["sampling_step"] > 0):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the two jobs never ran side by side")
        assert len({p["replica_id"] for p in running}) == 2
        assert api(cluster_app, "/sdapi/v1/interrupt?id_task=stop-me", post=True).status_code == 200
        stopped, kept = first.result(), second.result()
    assert stopped.status_code == kept.status_code == 200
    assert len(stopped.json()["images"]) == 1  # stopped in its first image, which it keeps
    assert len(kept.json()["images"]) == 3  # the other replica's job ran to the end


def test_jobs_go_to_the_replica_that_holds_their_checkpoint(cluster_app):
    body = {**JOB, "batch_size": 1, "save_images": False}
    wait_until_idle(cluster_app)

    def run(model: str) -> dict:
        answer = api(cluster_app, "/sdapi/v1/txt2img", {**body, "override_settings": {"sd_model_checkpoint": model}})
        assert answer.status_code == 200, answer.text
        return placements(cluster_app)[0]

    run("tiny-sd15"), run("tiny-sd15-b")  # after these, each checkpoint is held by a replica
    time.sleep(1.0)  # the replicas' reports of what they hold reach Serve's router
    placed = [run(model) for model in ("tiny-sd15", "tiny-sd15-b", "tiny-sd15", "tiny-sd15-b")]
    assert all(p["model_was_loaded"] for p in placed), placed
    assert placed[0]["replica_id"] == placed[2]["replica_id"] != placed[1]["replica_id"] == placed[3]["replica_id"]
    replicas = api(cluster_app, "/atelier/v1/cluster").json()["known_replicas"]
    known = {r["replica_id"]: r["checkpoints"] for r in replicas}
    assert "tiny-sd15" in known[placed[0]["replica_id"]] and "tiny-sd15-b" in known[placed[1]["replica_id"]]
    # the Settings tab's "Where jobs run" says the same
    panel = Client(cluster_app["url"], verbose=False).predict(api_name="/cluster_status")
    assert "Ray cluster" in panel and "2 running" in panel and "already loaded" in panel
    assert all(f"replica `{p['replica_id']}`" in panel for p in placed[:2])


def test_a_replica_killed_mid_job_fails_that_job_clearly_and_the_next_runs(cluster_app):
    wait_until_idle(cluster_app)
    with ThreadPoolExecutor(1) as pool:
        doomed = pool.submit(api, cluster_app, "/sdapi/v1/txt2img",
                             {**JOB, "steps": 150, "batch_size": 1, "n_iter": 8, "save_images": False})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            running = [p for p in placements(cluster_app) if p["outcome"] == "running"]
            if running:
                break
            assert not doomed.done(), doomed.result().text
            time.sleep(0.2)
        else:
            pytest.fail("the job never started")
        victim = running[0]
        os.kill(victim["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        answer = doomed.result(timeout=120)
    assert time.monotonic() - killed_at < 30  # the front noticed; it did not wait for a dead replica
    assert answer.status_code == 503
    error = answer.json()
    assert error["error"] == "ReplicaLostError" and "stopped" in error["detail"]
    assert victim["replica_id"] in error["detail"]
    assert placements(cluster_app)[0]["outcome"] == "replica lost"
    after = api(cluster_app, "/sdapi/v1/txt2img", {**JOB, "batch_size": 1, "save_images": False})
    assert after.status_code == 200 and len(after.json()["images"]) == 1
    assert placements(cluster_app)[0]["replica_id"] != victim["replica_id"]
