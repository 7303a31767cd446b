"""The first job after start hashes its checkpoint while it loads, not before: the image still carries
``Model hash`` (sha256[:10]); ``--no-hashing`` leaves it out; a hash that fails never fails the job.

A real store on a tiny single-file checkpoint; the hash cache is given a hasher that tells when it runs
(and can be held back), so the order of events is observed, not timed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

from pipelines.context import AppContext
from pipelines.infotext.codec import parse_infotext
from pipelines.models.hashing import HashCache, sha256_file
from pipelines.models.store import ModelStore
from pipelines.outputs import read_infotext
from pipelines.progress import ProgressUpdate
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import install_models, make_settings

JOB = dict(prompt="a lighthouse", width=64, height=64, steps=2, seed=11, model="tiny-sd15-file")


def context(tmp_path: Path, model_store: Path, hasher, **settings) -> tuple[AppContext, Path]:
    """A fresh data dir with the tiny single file; the store's hash cache uses ``hasher``."""
    install_models(model_store, tmp_path, ["tiny-sd15-file.safetensors"])
    config = make_settings(tmp_path, **settings)
    store = ModelStore(config, hashes=HashCache(config.hash_cache_file, hasher=hasher))
    file = tmp_path / "models" / "Stable-diffusion" / "tiny-sd15-file.safetensors"
    return AppContext.build(config, store=store), file


def test_the_first_job_samples_while_its_checkpoint_is_hashed_and_its_image_carries_the_hash(tmp_path, model_store):
    events: list[str] = []
    started, sampling = threading.Event(), threading.Event()

    def held_hasher(path: Path, offset: int) -> str:
        events.append("hash started")
        started.set()
        sampling.wait(60)  # released only once the job samples: a load that waited for the hash would stall here
        events.append("hash finished")
        return sha256_file(path, offset)

    def on_progress(update: ProgressUpdate) -> None:
        if update.unit == "steps" and not sampling.is_set():
            started.wait(60)  # a hash thread not yet scheduled on a loaded machine is no failure
            events.append("sampling")
            sampling.set()

    ctx, file = context(tmp_path, model_store, held_hasher)
    result = ctx.engine.generate(Txt2ImgRequest(**JOB), on_progress=on_progress)

    assert events == ["hash started", "sampling", "hash finished"]  # loaded and sampled while the hash ran
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    info = parse_infotext(read_infotext(result.paths[0]))
    assert info["Model hash"] == digest[:10] and info["Model"] == "tiny-sd15-file"  # waited for at save time
    assert result.info["sd_model_hash"] == digest[:10]
    cached = json.loads(ctx.settings.hash_cache_file.read_text())["sha256"]
    assert cached[str(file.resolve())]["sha256"] == digest
    assert ctx.store.registry.find("tiny-sd15-file").title == f"tiny-sd15-file [{digest[:10]}]"
    assert ctx.store.loaded("tiny-sd15-file").record.sha256 == digest  # the model in memory has it too


def test_no_hashing_writes_no_model_hash_and_hashes_nothing(tmp_path, model_store):
    hashed: list[Path] = []

    def hasher(path: Path, offset: int) -> str:
        hashed.append(path)
        return sha256_file(path, offset)

    ctx, file = context(tmp_path, model_store, hasher, no_hashing=True)
    result = ctx.engine.generate(Txt2ImgRequest(**JOB))

    info = parse_infotext(read_infotext(result.paths[0]))
    assert "Model hash" not in info and info["Model"] == "tiny-sd15-file"  # as A1111's --no-hashing
    assert result.info["sd_model_hash"] is None and hashed == []
    cache = ctx.settings.hash_cache_file
    assert not cache.exists() or str(file.resolve()) not in json.loads(cache.read_text()).get("sha256", {})
    assert ctx.store.registry.find("tiny-sd15-file").sha256 is None


def test_a_failing_hash_never_fails_the_job(tmp_path, model_store, caplog):
    attempts: list[Path] = []

    def failing_hasher(path: Path, offset: int) -> str:
        attempts.append(path)
        raise OSError(5, "Input/output error", str(path))

    ctx, _ = context(tmp_path, model_store, failing_hasher)
    with caplog.at_level(logging.WARNING):
        first = ctx.engine.generate(Txt2ImgRequest(**JOB))
        second = ctx.engine.generate(Txt2ImgRequest(**JOB))

    for result in (first, second):
        assert result.paths[0].is_file()
        info = parse_infotext(read_infotext(result.paths[0]))
        assert "Model hash" not in info and info["Model"] == "tiny-sd15-file"
    assert len(attempts) == 1  # remembered as failed for this file: not re-read for every image
    assert "Input/output error" in caplog.text and "no Model hash in the infotext" in caplog.text
