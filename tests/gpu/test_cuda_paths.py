"""GPU paths: fp16, SDPA/xformers on CUDA, medvram/lowvram offload. Skipped without CUDA."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from pipelines.context import AppContext
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import install_models, make_settings

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
REQUEST = dict(prompt="a cat", width=64, height=64, steps=4, seed=1, model="tiny-sd15")


def build(tmp_path, model_store, **settings) -> AppContext:
    install_models(model_store, tmp_path, ["tiny-sd15"])
    return AppContext.build(make_settings(tmp_path, device="cuda", **settings))


def test_cuda_runs_fp16_with_sdpa(tmp_path, model_store):
    ctx = build(tmp_path, model_store)
    result = ctx.engine.generate(Txt2ImgRequest(**REQUEST))
    loaded = ctx.selection.select("tiny-sd15")
    assert loaded.dtype == torch.float16 and loaded.pipeline.unet.device.type == "cuda"
    assert loaded.optimizations.attention == "PyTorch SDPA"
    again = ctx.engine.generate(Txt2ImgRequest(**REQUEST))
    assert np.array_equal(np.asarray(result.images[0].image), np.asarray(again.images[0].image))


def test_no_half_keeps_fp32(tmp_path, model_store):
    ctx = build(tmp_path, model_store, no_half=True)
    assert ctx.selection.select("tiny-sd15").dtype == torch.float32


@pytest.mark.skipif(importlib.util.find_spec("xformers") is None, reason="xformers not installed")
def test_xformers_on_cuda(tmp_path, model_store):
    ctx = build(tmp_path, model_store, attention="xformers")
    assert ctx.selection.select("tiny-sd15").optimizations.attention == "xformers"
    assert ctx.engine.generate(Txt2ImgRequest(**REQUEST)).paths


@pytest.mark.parametrize("mode, saving", [("medvram", "model CPU offload"), ("lowvram", "sequential CPU offload")])
def test_offload_modes_generate(tmp_path, model_store, mode, saving):
    ctx = build(tmp_path, model_store, memory_mode=mode)
    loaded = ctx.selection.select("tiny-sd15")
    assert saving in loaded.optimizations.savings and "VAE tiling" in loaded.optimizations.savings
    assert ctx.engine.generate(Txt2ImgRequest(**REQUEST)).paths


def test_two_tiers_park_in_ram_and_bring_back_on_cuda(tmp_path, model_store):
    """With room on the GPU for one tiny model, the idle one is parked in RAM and comes back without disk reads."""
    import shutil

    from pipelines.models.memory_budget import Tier

    install_models(model_store, tmp_path, ["tiny-sd15", "tiny-sd15-b"])
    probe = AppContext.build(make_settings(tmp_path, device="cuda"))
    one = sum(probe.selection.select("tiny-sd15").storages().values())
    probe.store.unload()
    ctx = AppContext.build(make_settings(tmp_path, device="cuda", vram_budget_bytes=int(one * 1.5)))
    first = ctx.engine.generate(Txt2ImgRequest(**REQUEST))
    ctx.engine.generate(Txt2ImgRequest(**{**REQUEST, "model": "tiny-sd15-b"}))
    tiers = {e.name: e.tier for e in ctx.store.memory()}
    assert tiers == {"tiny-sd15": Tier.RAM, "tiny-sd15-b": Tier.DEVICE}
    assert ctx.store.loaded("tiny-sd15").pipeline.unet.device.type == "cpu"
    shutil.rmtree(tmp_path / "models" / "Stable-diffusion" / "tiny-sd15")
    again = ctx.engine.generate(Txt2ImgRequest(**REQUEST))
    assert ctx.store.loaded("tiny-sd15").pipeline.unet.device.type == "cuda"
    assert np.array_equal(np.asarray(first.images[0].image), np.asarray(again.images[0].image))
