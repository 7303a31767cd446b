"""txt2img through the engine on a tiny real model: seeds, samplers, files, interrupt, concurrency."""

from __future__ import annotations

import datetime as dt
import threading
import time

import numpy as np
import pytest

from pipelines.infotext.codec import parse_infotext
from pipelines.outputs import read_infotext
from pipelines.requests import Txt2ImgRequest
from tests.support.samplers import REQUIRED_SAMPLERS

BASE = dict(prompt="a red fox", negative_prompt="blurry", width=64, height=64, steps=4, model="tiny-sd15")


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(int)


# The tests share the module's context (tiny-sd15 and -b load once), except the one that counts output files.
def test_same_seed_same_image_other_seed_other_image(module_app_context):
    def run(**kw):
        return pixels(module_app_context.engine.generate(Txt2ImgRequest(**{**BASE, **kw})).images[0].image)

    a, b, c = run(seed=1), run(seed=1), run(seed=2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("sampler", REQUIRED_SAMPLERS)
def test_every_sampler_generates(module_app_context, sampler):
    # One context for every sampler's job, so tiny-sd15 loads once: each job builds its own scheduler from the
    # model's config and leaves the cached pipeline as it was (see the next test).
    request = Txt2ImgRequest(**{**BASE, "steps": 3, "sampler_name": sampler, "seed": 3})
    result = module_app_context.engine.generate(request)
    assert result.images[0].image.size == (64, 64)
    assert f"Sampler: {sampler}," in result.images[0].infotext


def test_sampler_switch_changes_the_image_and_never_the_cached_scheduler(module_app_context):
    euler = module_app_context.engine.generate(Txt2ImgRequest(**BASE, seed=5, sampler_name="Euler a"))
    dpm = module_app_context.engine.generate(Txt2ImgRequest(**BASE, seed=5, sampler_name="DPM++ 2M"))
    assert not np.array_equal(pixels(euler.images[0].image), pixels(dpm.images[0].image))
    cached = module_app_context.store.cache.get(module_app_context.store.registry.find("tiny-sd15").ref.key)
    assert type(cached.pipeline.scheduler).__name__ == "PNDMScheduler"  # the model's own, untouched


def test_batch_files_are_numbered_with_seeds_and_carry_infotext(app_context):
    result = app_context.engine.generate(Txt2ImgRequest(**BASE, seed=100, batch_size=2, n_iter=2))
    folder = app_context.settings.outputs_dir / "txt2img-images" / dt.date.today().isoformat()
    assert [p.name for p in result.paths] == ["00000-100.png", "00001-101.png", "00002-102.png", "00003-103.png"]
    assert all(p.parent == folder for p in result.paths)
    info = parse_infotext(read_infotext(result.paths[3]))
    record = app_context.store.registry.find("tiny-sd15")
    assert info["Prompt"] == "a red fox" and info["Negative prompt"] == "blurry"
    fields = ("Steps", "Sampler", "Seed", "Size-1", "Size-2")
    assert [info[f] for f in fields] == ["4", "Euler a", "103", "64", "64"]
    assert info["Model hash"] == record.sha256[:10] and info["Model"] == "tiny-sd15"
    assert info["CFG scale"] == "7" and info["Schedule type"] == "Uniform"


def test_image_is_reproduced_exactly_from_its_own_file(module_app_context):
    engine = module_app_context.engine
    original = engine.generate(Txt2ImgRequest(**BASE, seed=-1, sampler_name="DPM++ 2M", cfg_scale=5.5))
    p = parse_infotext(read_infotext(original.paths[0]))
    replay = Txt2ImgRequest(prompt=p["Prompt"], negative_prompt=p["Negative prompt"], steps=int(p["Steps"]),
                            sampler_name=p["Sampler"], scheduler=p["Schedule type"], cfg_scale=float(p["CFG scale"]),
                            seed=int(p["Seed"]), width=int(p["Size-1"]), height=int(p["Size-2"]), model=p["Model"])
    again = engine.generate(replay)
    assert np.array_equal(pixels(original.images[0].image), pixels(again.images[0].image))
    assert again.images[0].infotext == original.images[0].infotext


def test_progress_reports_every_step_with_previews(module_app_context):
    updates = []
    module_app_context.engine.generate(Txt2ImgRequest(**{**BASE, "steps": 6}), on_progress=updates.append)
    steps = [u for u in updates if u.unit == "steps"]
    assert [u.step for u in steps] == [1, 2, 3, 4, 5, 6]
    previews = [u.step for u in steps if u.preview is not None]
    assert previews == [2, 4]  # live_preview_every=2 in the test settings; none on the final step
    assert steps[1].preview.size == (64, 64)  # small images keep their size
    updates.clear()
    # The smallest 4:3 size past the 256 px cap (a 512x384 job cost 2-3x as much and checked the same).
    big = module_app_context.engine.generate(Txt2ImgRequest(**{**BASE, "width": 320, "height": 240, "steps": 3}),
                                      on_progress=updates.append)
    assert big.images[0].image.size == (320, 240)
    assert [u.preview.size for u in updates if u.preview is not None] == [(256, 192)]  # capped, same aspect


def test_interrupt_keeps_the_current_image_and_stops_the_batch(module_app_context):
    engine = module_app_context.engine

    def interrupt_at_step_2(update):
        if update.unit == "steps" and update.step == 2:
            assert engine.state is not None and engine.state.sampling_step == 2
            engine.interrupt()

    result = engine.generate(Txt2ImgRequest(**{**BASE, "steps": 20, "n_iter": 3}), on_progress=interrupt_at_step_2)
    assert result.interrupted and len(result.images) == 1 and result.paths
    assert engine.state is None  # idle again


def test_concurrent_requests_do_not_corrupt_each_other(module_app_context):
    requests = [Txt2ImgRequest(**BASE, seed=21, sampler_name="Euler a"),
                Txt2ImgRequest(**BASE, seed=22, sampler_name="DPM++ 2M"),
                Txt2ImgRequest(**{**BASE, "model": "tiny-sd15-b"}, seed=23, sampler_name="UniPC")]
    expected = [pixels(module_app_context.engine.generate(r).images[0].image) for r in requests]
    # Two threads per request, each with its own slot: a thread that fails or hangs cannot hide behind its twin.
    jobs = [(i, twin) for i in range(3) for twin in range(2)]
    results: dict[tuple[int, int], np.ndarray] = {}
    errors: dict[tuple[int, int], BaseException] = {}

    def worker(job: tuple[int, int]) -> None:
        try:
            results[job] = pixels(module_app_context.engine.generate(requests[job[0]]).images[0].image)
        except BaseException as exc:  # re-raised below: pytest only warns about exceptions in threads
            errors[job] = exc

    threads = [threading.Thread(target=worker, args=(job,), name=f"request {job[0]} #{job[1]}", daemon=True)
               for job in jobs]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"threads still running after 120 s: {hung}"
    if errors:
        job, first = next(iter(errors.items()))
        raise AssertionError(f"{len(errors)} thread(s) failed: {sorted(errors)}; the first, {job}, with:") from first
    assert sorted(results) == jobs
    for (i, twin), image in results.items():
        assert np.array_equal(image, expected[i]), f"request {i} (thread #{twin}) gave a different image"


def test_skip_cuts_the_current_image_short_and_the_batch_goes_on(module_app_context):
    engine = module_app_context.engine
    seen = []

    def skip_first_image(update):
        seen.append((engine.state.job_no, update.step))
        if update.unit == "steps" and engine.state.job_no == 0 and update.step == 2:
            engine.skip()

    result = engine.generate(Txt2ImgRequest(**{**BASE, "steps": 6, "n_iter": 2}), on_progress=skip_first_image)
    assert not result.interrupted and len(result.images) == 2
    assert [s for j, s in seen if j == 1] == [1, 2, 3, 4, 5, 6]  # second image ran every step
    assert max(s for j, s in seen if j == 0) < 6  # first one stopped early
