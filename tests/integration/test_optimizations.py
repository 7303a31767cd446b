"""Attention and memory choices on CPU: applied through diffusers, reported, and still generating."""

from __future__ import annotations

import numpy as np

from pipelines.context import AppContext
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import install_models, make_settings

REQUEST = dict(prompt="a cat", width=64, height=64, steps=3, seed=4, model="tiny-sd15")


def build(tmp_path, model_store, **settings) -> AppContext:
    install_models(model_store, tmp_path, ["tiny-sd15"])
    return AppContext.build(make_settings(tmp_path, **settings))


def test_default_is_sdpa_on_every_attention_layer(tmp_path, model_store):
    from diffusers.models.attention_processor import AttnProcessor2_0

    ctx = build(tmp_path, model_store)
    loaded = ctx.selection.select("tiny-sd15")
    assert loaded.optimizations.attention == "PyTorch SDPA" and loaded.optimizations.savings == ()
    assert all(isinstance(p, AttnProcessor2_0) for p in loaded.pipeline.unet.attn_processors.values())
    assert "PyTorch SDPA" in ctx.store.status(loaded)


def test_xformers_request_on_cpu_falls_back_to_sdpa_and_says_why(tmp_path, model_store):
    ctx = build(tmp_path, model_store, attention="xformers")
    loaded = ctx.selection.select("tiny-sd15")
    assert loaded.optimizations.attention == "PyTorch SDPA"
    assert any("xformers needs CUDA" in note for note in loaded.optimizations.notes)


def test_medvram_on_cpu_slices_and_tiles_and_gives_the_same_image(tmp_path, model_store):
    from diffusers.models.attention_processor import SlicedAttnProcessor

    plain = build(tmp_path / "a", model_store)
    saving = build(tmp_path / "b", model_store, memory_mode="medvram")
    loaded = saving.selection.select("tiny-sd15")
    assert {"attention slicing", "VAE slicing", "VAE tiling"} <= set(loaded.optimizations.savings)
    assert any("offload needs an accelerator" in n for n in loaded.optimizations.notes)
    assert any(isinstance(p, SlicedAttnProcessor) for p in loaded.pipeline.unet.attn_processors.values())
    a = np.asarray(plain.engine.generate(Txt2ImgRequest(**REQUEST)).images[0].image).astype(int)
    b = np.asarray(saving.engine.generate(Txt2ImgRequest(**REQUEST)).images[0].image).astype(int)
    assert np.abs(a - b).max() <= 2  # slicing changes summation order only
