"""Out of memory during a job: retried once with lower-memory savings, the user told, the next job untouched.

The fault is torch's own ``OutOfMemoryError`` raised from a forward pre-hook on the real tiny UNet (the
pipeline, store and engine are the real ones); the free memory the estimate reads comes from the store's
memory probe, which the store takes as a parameter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor

from pipelines.context import AppContext
from pipelines.errors import OutOfMemoryError
from pipelines.models.job_memory import JobEstimate, choose_level, estimate_job
from pipelines.models.low_memory import MemoryLevel, lowered
from pipelines.models.memory_budget import Tier
from pipelines.models.store import ModelStore
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import install_models, make_settings

REQUEST = Txt2ImgRequest(prompt="a lighthouse", width=64, height=64, steps=2, seed=5, sampler_name="Euler",
                         model="tiny-sd15")
SLICED = "VAE slicing and VAE tiling"


@dataclass
class GivenFreeMemory:
    """The store's memory probe: ``device_free`` bytes free on the device (plenty unless a test says less)."""

    device_free: int = 1 << 40

    def free_bytes(self, tier: Tier) -> int:
        return self.device_free if tier is Tier.DEVICE else 1 << 40

    def total_bytes(self, tier: Tier) -> int:
        return 1 << 41


@pytest.fixture(scope="module")
def memory() -> GivenFreeMemory:
    return GivenFreeMemory()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, model_store, memory) -> AppContext:
    data_dir = tmp_path_factory.mktemp("oom-data")
    install_models(model_store, data_dir, ["tiny-sd15"])
    settings = make_settings(data_dir, initial_model="tiny-sd15")
    return AppContext.build(settings, store=ModelStore(settings, memory=memory))


@contextmanager
def unet_calls(ctx: AppContext, fail_at: Callable[[int], bool],
               on_call: Callable[[int], None] = lambda n: None) -> Iterator[list[str]]:
    """The tiny UNet raises ``torch.OutOfMemoryError`` at the calls ``fail_at`` picks (counted from 1); yields, for
    each call, the attention processor it ran with and whether the VAE was set to decode in tiles."""
    pipe = ctx.store.load("tiny-sd15").pipeline
    unet = pipe.unet
    seen: list[tuple[str, bool]] = []

    def hook(module: torch.nn.Module, _args: tuple) -> None:
        seen.append((type(next(iter(module.attn_processors.values()))).__name__, pipe.vae.use_tiling))
        on_call(len(seen))
        if fail_at(len(seen)):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (test fault)")

    handle = unet.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def saved(ctx: AppContext) -> set[str]:
    return {str(p) for p in ctx.settings.outputs_dir.rglob("*.png")}


def no_savings_left(ctx: AppContext, processors: dict) -> bool:
    pipe = ctx.store.loaded("tiny-sd15").pipeline
    return pipe.unet.attn_processors == processors and not pipe.vae.use_tiling and not pipe.vae.use_slicing


def test_oom_is_retried_with_slicing_and_the_next_job_is_as_before(ctx):
    before = ctx.engine.generate(REQUEST)
    processors = dict(ctx.store.loaded("tiny-sd15").pipeline.unet.attn_processors)
    files = saved(ctx)
    updates = []
    with unet_calls(ctx, fail_at=lambda n: n == 2) as seen:
        result = ctx.engine.generate(REQUEST, on_progress=updates.append)
    # SDPA kept (slicing it would take more memory, not less); the VAE tiled in the retry
    assert seen == [("AttnProcessor2_0", False)] * 2 + [("AttnProcessor2_0", True)] * 2
    assert len(result.notices) == 1 and f"run again with {SLICED}" in result.notices[0]
    assert "CUDA out of memory" in result.notices[0]
    assert any(u.text.startswith("Retrying with lower memory") for u in updates)
    assert saved(ctx) - files == {str(result.images[0].path)}  # one image: the failed attempt saved nothing
    assert no_savings_left(ctx, processors)
    after = ctx.engine.generate(REQUEST)
    assert np.array_equal(np.asarray(before.images[0].image), np.asarray(after.images[0].image))
    assert not after.notices


def test_a_second_oom_is_a_clear_error_and_leaves_no_file(ctx):
    """With the plain attention processor (whole score matrix at once) the retry slices attention too."""
    unet = ctx.store.load("tiny-sd15").pipeline.unet
    sdpa = dict(unet.attn_processors)
    unet.set_attn_processor(AttnProcessor())
    try:
        processors = dict(unet.attn_processors)
        files = saved(ctx)
        with unet_calls(ctx, fail_at=lambda n: True) as seen, pytest.raises(OutOfMemoryError) as failure:
            ctx.engine.generate(REQUEST)
        assert seen == [("AttnProcessor", False), ("SlicedAttnProcessor", True)]
        assert saved(ctx) == files and no_savings_left(ctx, processors)
    finally:
        unet.set_attn_processor(sdpa)
    assert str(failure.value).startswith("out of memory even with attention slicing, VAE slicing and VAE tiling "
                                         "(CPU offload needs an accelerator); try a smaller size or batch size")


def test_interrupt_stops_the_retry_which_progress_names(ctx):
    shown: list[str] = []

    def interrupt_the_retry(call: int) -> None:
        if call == 2:
            shown.append(ctx.engine.state.textinfo)  # what /sdapi/v1/progress reports as textinfo
            ctx.engine.state.interrupt()

    with unet_calls(ctx, fail_at=lambda n: n == 1, on_call=interrupt_the_retry) as seen:
        result = ctx.engine.generate(replace(REQUEST, steps=4))
    assert result.interrupted and len(seen) == 2  # the retry stopped after its first step
    assert shown == ["Retrying with lower memory (VAE slicing and tiling)"]


def test_short_memory_picks_the_lower_memory_mode_up_front(ctx, memory):
    processors = dict(ctx.store.load("tiny-sd15").pipeline.unet.attn_processors)
    memory.device_free = 1 << 20  # a 64x64 job on the tiny model is estimated at a few MiB
    try:
        with unet_calls(ctx, fail_at=lambda n: False) as seen:
            result = ctx.engine.generate(REQUEST)
    finally:
        memory.device_free = 1 << 40
    assert seen == [("AttnProcessor2_0", True)] * 2
    assert result.notices[0].startswith("Low on memory") and f"ran with {SLICED}" in result.notices[0]
    assert no_savings_left(ctx, processors)


def test_estimate_grows_with_size_and_batch_and_offload_makes_room(ctx):
    loaded = ctx.store.load("tiny-sd15")
    small = estimate_job(REQUEST, loaded)
    assert estimate_job(replace(REQUEST, width=128, height=128), loaded).denoise_bytes == 4 * small.denoise_bytes
    assert estimate_job(replace(REQUEST, batch_size=2), loaded).decode_bytes == 2 * small.decode_bytes
    estimate = JobEstimate(denoise_bytes=800, decode_bytes=1000, tiled_decode_bytes=300, offloadable_bytes=500)
    levels = [MemoryLevel.NORMAL, MemoryLevel.SLICED, MemoryLevel.OFFLOAD]
    assert choose_level(estimate, 1000, levels) is MemoryLevel.NORMAL
    assert choose_level(estimate, 800, levels) is MemoryLevel.SLICED  # the decode tiled: the UNet's 800
    assert choose_level(estimate, 300, levels) is MemoryLevel.OFFLOAD  # 300 free + 500 offloaded >= 800
    assert choose_level(estimate, 50, levels[:2]) is MemoryLevel.SLICED  # nothing fits: the lowest-memory mode


def test_api_reports_the_retry_in_info_and_a_second_oom_as_503(ctx):
    from fastapi.testclient import TestClient

    from webui.api.app import ApiConfig, create_api_app

    client = TestClient(create_api_app(ctx, ApiConfig()))
    body = {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 5, "sampler_name": "Euler"}
    with unet_calls(ctx, fail_at=lambda n: n == 1):
        response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200
    notices = json.loads(response.json()["info"])["notices"]
    assert len(notices) == 1 and SLICED in notices[0]
    with unet_calls(ctx, fail_at=lambda n: True):
        response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 503
    assert response.json()["error"] == "OutOfMemoryError" and "out of memory even with" in response.json()["detail"]


def test_cli_prints_the_notice(ctx):
    import io

    from webui.cli import run_txt2img

    out, err = io.StringIO(), io.StringIO()
    with unet_calls(ctx, fail_at=lambda n: n == 1):
        assert run_txt2img(ctx, REQUEST, out=None, quiet=True, stdout=out, stderr=err) == 0
    assert out.getvalue().strip().endswith(".png") and f"run again with {SLICED}" in err.getvalue()


def test_offload_level_is_undone_to_the_same_model(ctx):
    """Model CPU offload is for accelerators; on a CPU its hooks still attach, so its undoing is checked here."""
    loaded = ctx.store.load("tiny-sd15")
    processors = dict(loaded.pipeline.unet.attn_processors)
    before = ctx.engine.generate(REQUEST)
    with lowered([loaded], MemoryLevel.OFFLOAD):
        assert hasattr(loaded.pipeline.unet, "_hf_hook")
        offloaded = ctx.engine.generate(REQUEST)
    assert not hasattr(loaded.pipeline.unet, "_hf_hook") and loaded.pipeline.unet.device.type == "cpu"
    assert no_savings_left(ctx, processors)
    after = ctx.engine.generate(REQUEST)
    assert offloaded.images[0].path.exists()
    assert np.array_equal(np.asarray(before.images[0].image), np.asarray(after.images[0].image))
