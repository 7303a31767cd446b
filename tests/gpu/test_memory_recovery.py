"""Out of memory on a real CUDA device: a real allocator failure is recovered from, a nearly full device makes
the job choose a lower-memory mode up front, and the next job runs as before. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.context import AppContext
from pipelines.models.job_memory import estimate_job
from pipelines.models.low_memory import MemoryLevel
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import install_models, make_settings

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
REQUEST = dict(prompt="a cat", width=64, height=64, steps=3, seed=1, model="tiny-sd15")
MIB = 1 << 20


@pytest.fixture
def ctx(tmp_path, model_store) -> AppContext:
    install_models(model_store, tmp_path, ["tiny-sd15"])
    return AppContext.build(make_settings(tmp_path, device="cuda"))


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image)


def untouched(ctx: AppContext) -> bool:
    """The cached model on the device, with no offload hooks, no sliced attention and no VAE tiling left."""
    loaded = ctx.store.loaded("tiny-sd15")
    pipe = loaded.pipeline
    processors = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    return (loaded.plan.mode == "normal" and pipe.unet.device.type == "cuda" and not hasattr(pipe.unet, "_hf_hook")
            and processors == {"AttnProcessor2_0"} and not pipe.vae.use_tiling)


def test_a_real_allocator_failure_is_retried_after_its_memory_is_given_back(ctx):
    before = ctx.engine.generate(Txt2ImgRequest(**REQUEST))
    baseline = torch.cuda.memory_reserved()
    unet = ctx.store.loaded("tiny-sd15").pipeline.unet
    reserved_at_call: list[int] = []

    def ask_for_too_much(_module, _args):
        reserved_at_call.append(torch.cuda.memory_reserved())
        if len(reserved_at_call) == 2:  # mid-job: 4 GiB held by the failing frame, then more than the device has
            held = torch.empty(4 << 30, dtype=torch.uint8, device="cuda")  # noqa: F841 (kept alive by the frame)
            torch.empty(torch.cuda.mem_get_info()[1] + (1 << 30), dtype=torch.uint8, device="cuda")

    handle = unet.register_forward_pre_hook(ask_for_too_much)
    try:
        result = ctx.engine.generate(Txt2ImgRequest(**REQUEST))
    finally:
        handle.remove()
    assert "CUDA out of memory" in result.notices[0] and "VAE slicing and VAE tiling" in result.notices[0]
    assert result.images[0].path.exists()
    assert reserved_at_call[2] < baseline + (1 << 30)  # the retry started with the failed attempt's 4 GiB given back
    assert untouched(ctx)
    assert np.array_equal(pixels(before), pixels(ctx.engine.generate(Txt2ImgRequest(**REQUEST))))


def test_a_nearly_full_device_runs_the_job_offloaded_up_front_and_then_as_before(ctx):
    request = Txt2ImgRequest(**{**REQUEST, "width": 1024, "height": 1024, "steps": 2})
    before = ctx.engine.generate(request)
    needed = estimate_job(request, ctx.store.loaded("tiny-sd15")).needed(MemoryLevel.NORMAL)
    torch.cuda.empty_cache()
    free = torch.cuda.mem_get_info()[0]
    hog = torch.empty(max(0, free - needed // 2), dtype=torch.uint8, device="cuda")  # half the job's estimate left
    try:
        result = ctx.engine.generate(request)
    finally:
        del hog
        torch.cuda.empty_cache()
    assert result.notices and result.notices[0].startswith("Low on memory")
    assert "model CPU offload" in result.notices[0] and result.images[0].path.exists()
    assert untouched(ctx)
    assert np.array_equal(pixels(before), pixels(ctx.engine.generate(request)))
