"""The SD x4 upscaler: found among the models, listed among the upscalers (not the checkpoints),
loaded through the model store and run by diffusers on a tiny real StableDiffusionUpscalePipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.context import AppContext
from pipelines.errors import UnsupportedModelError
from pipelines.models.kinds import ModelType
from pipelines.upscalers.records import UpscalerKind
from tests.support.apps import install_models, make_settings
from tests.support.hf_cache import install_into_hf_cache
from tests.support.tiny_upscalers import save_sd_x4_upscaler


@pytest.fixture(scope="module")
def sd_x4_folder(tmp_path_factory):
    return save_sd_x4_upscaler(tmp_path_factory.mktemp("sdx4") / "tiny-sd-x4")


@pytest.fixture
def ctx(tmp_path, model_store, sd_x4_folder) -> AppContext:
    install_models(model_store, tmp_path, ["tiny-sd15"])
    install_models(sd_x4_folder.parent, tmp_path, ["tiny-sd-x4"])
    return AppContext.build(make_settings(tmp_path))


def photo(width: int = 20, height: int = 12) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), "RGB")


def test_listed_as_an_upscaler_not_as_a_checkpoint(ctx):
    store = ctx.store
    assert [r.name for r in store.checkpoints() if r.installed] == ["tiny-sd15"]
    assert [r.name for r in store.records(ModelType.SD_X4_UPSCALER)] == ["tiny-sd-x4"]
    assert "SD x4 upscaler" in ctx.upscalers.names()
    record = ctx.upscalers.find("SD x4 upscaler")
    assert record.kind is UpscalerKind.DIFFUSION and record.scale == 4 and record.model_name == "tiny-sd-x4"
    assert ctx.upscalers.default_name() == "Lanczos"  # a diffusion upscaler is never picked by default
    with pytest.raises(UnsupportedModelError, match="pick it as an upscaler"):
        store.registry.find("tiny-sd-x4")


def test_upscales_4x_through_the_model_store_reproducibly(ctx):
    store = ctx.store
    tiles = []
    first = ctx.upscalers.upscale(photo(), 4, "SD x4 upscaler", on_tile=lambda d, t: tiles.append((d, t)))
    assert first.size == (80, 48) and tiles == [(1, 1)]
    upscale_record = store.records(ModelType.SD_X4_UPSCALER)[0]
    held = store.cache.get(upscale_record.ref.key)
    assert held is not None and type(held.pipeline).__name__ == "StableDiffusionUpscalePipeline"
    assert held.device == store.device and held.dtype == store.dtype
    again = ctx.upscalers.upscale(photo(), 4, "SD x4 upscaler")
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert np.asarray(first).std() > 1  # not a flat image
    assert ctx.upscalers.upscale(photo(), 2, "SD x4 upscaler").size == (40, 24)  # one pass, then Lanczos


def test_extras_with_the_sd_x4_upscaler(ctx):
    from pipelines.requests import ExtrasRequest

    result = ctx.engine.generate(ExtrasRequest(images=(photo(10, 10),), upscaler_1="SD x4 upscaler",
                                               upscaling_resize=4))
    (image,) = result.images
    assert image.image.size == (40, 40) and image.path is not None
    assert image.infotext == "Postprocess upscale by: 4, Postprocess upscaler: SD x4 upscaler"


def test_refused_as_a_checkpoint(ctx, sd_x4_folder):
    from pipelines.requests import Txt2ImgRequest

    for query in ("tiny-sd-x4", str(ctx.settings.checkpoint_dirs[0] / "tiny-sd-x4")):
        with pytest.raises(UnsupportedModelError, match="SD x4 upscaler"):
            ctx.engine.generate(Txt2ImgRequest(prompt="x", width=64, height=64, steps=1, model=query))


def test_found_in_the_hf_cache(tmp_path, sd_x4_folder):
    hf_home = tmp_path / "hf"
    install_into_hf_cache(sd_x4_folder, "atelier-test/sd-x4", hf_home)
    ctx = AppContext.build(make_settings(tmp_path / "data", hf_cache_dir=hf_home / "hub", hub_offline=True))
    assert [r.name for r in ctx.store.records(ModelType.SD_X4_UPSCALER)] == ["atelier-test/sd-x4"]
    assert "SD x4 upscaler" in ctx.upscalers.names()
    assert "atelier-test/sd-x4" not in [r.name for r in ctx.store.checkpoints()]
    assert ctx.upscalers.upscale(photo(8, 8), 4, "SD x4 upscaler").size == (32, 32)
