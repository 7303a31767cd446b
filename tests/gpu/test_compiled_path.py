"""--compile on CUDA: torch.compile with CUDA graphs, channels-last and fused QKV through a real txt2img job, against
the eager fp16 image; a second size recompiles and still generates. Skipped without CUDA."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from pipelines.context import AppContext
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import install_models, make_settings

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
REQUEST = dict(prompt="a cat", width=64, height=64, steps=4, seed=1, model="tiny-sd15")


def pixels(ctx: AppContext, **overrides) -> np.ndarray:
    return np.asarray(ctx.engine.generate(Txt2ImgRequest(**{**REQUEST, **overrides})).images[0].image).astype(int)


def test_compiled_with_cuda_graphs_matches_eager(tmp_path, model_store, caplog):
    install_models(model_store, tmp_path, ["tiny-sd15"])
    eager = pixels(AppContext.build(make_settings(tmp_path, device="cuda")))
    ctx = AppContext.build(make_settings(tmp_path, device="cuda", compile=True, compile_mode="reduce-overhead",
                                         channels_last=True))
    loaded = ctx.selection.select("tiny-sd15")
    assert loaded.dtype == torch.float16
    assert {"torch.compile (reduce-overhead)", "fused QKV", "channels-last"} <= set(loaded.optimizations.savings)
    with caplog.at_level(logging.INFO, logger="pipelines.models.compile"):
        first = pixels(ctx)
        again = pixels(ctx)  # CUDA graphs replayed
    assert "tiny-sd15 compiled for 64x64x1" in caplog.text
    assert np.abs(first - eager).mean() < 1 and np.abs(first - eager).max() <= 8  # fp16, other kernels
    assert np.array_equal(first, again)
    assert pixels(ctx, width=96).shape == (64, 96, 3)  # a new size recompiles (expected), and works
