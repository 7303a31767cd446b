"""Unconditional pixel-space models (DDPM / DDIM pipelines, bare UNet2DModel folders) through the store and the
engine, on tiny real ones: listed as checkpoints, seeds reproducible per image, DDPM and DDIM, infotext, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.errors import ValidationError
from pipelines.infotext.codec import parse_infotext
from pipelines.models.architecture import Architecture
from pipelines.outputs import read_infotext
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import install_models, make_settings
from tests.support.tiny_seed_models import save_ddpm_folder

JOB = dict(model="tiny-ddpm", sampler_name="DDPM", steps=3)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, model_store) -> AppContext:
    data_dir = tmp_path_factory.mktemp("unconditional")
    folder = data_dir / "models" / "Stable-diffusion"
    save_ddpm_folder(folder / "tiny-ddpm", seed=0)
    save_ddpm_folder(folder / "tiny-ddim", seed=1, pipeline="DDIMPipeline")
    save_ddpm_folder(folder / "tiny-unet-flat", seed=2, flat=True)
    install_models(model_store, data_dir, ["tiny-sd15"])
    return AppContext.build(make_settings(data_dir, initial_model="tiny-ddpm"))


def pixels(result, i: int = 0) -> np.ndarray:
    return np.asarray(result.images[i].image).astype(int)


def test_listed_as_unconditional_checkpoints(ctx):
    kinds = {r.name: r.kind for r in ctx.store.checkpoints()}
    for name in ("tiny-ddpm", "tiny-ddim", "tiny-unet-flat"):
        assert kinds[name] is not None and kinds[name].architecture is Architecture.UNCONDITIONAL, name
        assert kinds[name].label == "Unconditional (pixel space)"


def test_seeds_are_reproducible_per_image_and_batches_follow_a1111(ctx):
    gen = ctx.engine.generate
    a, b = gen(Txt2ImgRequest(**JOB, seed=7)), gen(Txt2ImgRequest(**JOB, seed=7))
    other = gen(Txt2ImgRequest(**JOB, seed=8))
    assert a.images[0].image.size == (16, 16)  # the model's sample_size, not the request's 512x512
    assert np.array_equal(pixels(a), pixels(b)) and not np.array_equal(pixels(a), pixels(other))
    batch = gen(Txt2ImgRequest(**JOB, seed=7, batch_size=2))
    assert [img.seed for img in batch.images] == [7, 8]
    # the same noise per seed in a batch (a batched convolution may round one 8-bit level differently)
    assert np.abs(pixels(batch, 0) - pixels(a)).max() <= 2 and np.abs(pixels(batch, 1) - pixels(other)).max() <= 2
    assert np.abs(pixels(a) - pixels(other)).mean() > 20


def test_ddim_differs_from_ddpm_and_infotext_is_written(ctx):
    ddpm = ctx.engine.generate(Txt2ImgRequest(**JOB, seed=3, prompt="ignored"))
    ddim = ctx.engine.generate(Txt2ImgRequest(**{**JOB, "sampler_name": "DDIM"}, seed=3))
    assert not np.array_equal(pixels(ddpm), pixels(ddim))
    info = parse_infotext(read_infotext(ddim.paths[0]))
    record = ctx.store.registry.find("tiny-ddpm")
    assert [info[k] for k in ("Steps", "Sampler", "Seed", "Size-1", "Size-2", "Model")] == \
        ["3", "DDIM", "3", "16", "16", "tiny-ddpm"]
    assert info["Model hash"] == record.sha256[:10] and "CFG scale" not in info and info["Prompt"] == ""
    assert ddpm.notices == ("tiny-ddpm is an unconditional model: the prompt is not used.",)
    assert ddpm.info["width"] == 16 and ddpm.info["sampler_name"] == "DDPM"


def test_flat_and_ddim_folders_generate(ctx):
    for name in ("tiny-ddim", "tiny-unet-flat"):
        result = ctx.engine.generate(Txt2ImgRequest(model=name, sampler_name="DDIM", steps=2, seed=1))
        assert result.images[0].image.size == (16, 16) and f"Model: {name}" in result.images[0].infotext


def test_steps_and_samplers_are_checked_per_family(ctx):
    Txt2ImgRequest(**{**JOB, "steps": 1000}).validate()  # DDPM: every training step
    with pytest.raises(ValidationError) as too_many:
        Txt2ImgRequest(**{**JOB, "steps": 1001}).validate()
    assert too_many.value.field == "steps" and "1000" in str(too_many.value)
    with pytest.raises(ValidationError) as ddim:
        Txt2ImgRequest(**{**JOB, "sampler_name": "DDIM", "steps": 151}).validate()
    assert ddim.value.field == "steps" and "150" in str(ddim.value)
    with pytest.raises(ValidationError) as euler:
        ctx.engine.generate(Txt2ImgRequest(**{**JOB, "sampler_name": "Euler a"}))
    assert euler.value.field == "sampler_name" and "DDPM or DDIM" in str(euler.value)
    with pytest.raises(ValidationError) as on_sd:  # DDPM is not a sampler for text-to-image models
        ctx.engine.generate(Txt2ImgRequest(**{**JOB, "model": "tiny-sd15", "width": 64, "height": 64}))
    assert on_sd.value.field == "sampler_name" and "unconditional" in str(on_sd.value)
    assert "DDPM" not in samplers.sampler_names() and samplers.unconditional_sampler_names() == ["DDPM", "DDIM"]


def test_img2img_on_an_unconditional_model_says_it_only_generates_from_noise(ctx):
    from PIL import Image

    from pipelines.errors import UnsupportedModelError
    from pipelines.requests import Img2ImgRequest

    job = Img2ImgRequest(init_image=Image.new("RGB", (64, 64)), model="tiny-ddpm", sampler_name="DDIM", steps=2,
                         width=64, height=64)
    with pytest.raises(UnsupportedModelError, match="only generates from noise"):
        ctx.engine.generate(job)


def test_interrupt_keeps_the_image_so_far(ctx):
    def stop_after_first(update) -> None:
        if update.unit == "steps" and update.step == 1:
            ctx.engine.interrupt()

    result = ctx.engine.generate(Txt2ImgRequest(**{**JOB, "steps": 50, "n_iter": 2}, seed=4),
                                 on_progress=stop_after_first)
    assert result.interrupted and len(result.images) == 1


def test_hub_repos_in_the_flat_ddpm_layout_download_and_run(tmp_path):
    """google/ddpm-cifar10-32's layout (model_index.json beside the UNet's config, weights and scheduler config, plus
    files a pipeline does not need) and a bare UNet2DModel + scheduler repo, over HTTP from a local Hub."""
    import json

    from tests.support.hub_server import LocalHub

    flat = save_ddpm_folder(tmp_path / "flat", seed=4, flat=True)
    bare = save_ddpm_folder(tmp_path / "bare", seed=5, flat=True)
    (flat / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline", "scheduler": [
        "diffusers", "DDPMScheduler"], "unet": ["diffusers", "UNet2DModel"]}))
    (flat / "README.md").write_text("a model card")
    with LocalHub() as hub:
        hub.add_repo("google-like/ddpm-flat", flat)
        hub.add_repo("someone/bare-unet", bare)
        hub_ctx = AppContext.build(make_settings(tmp_path / "data", hub_offline=False, hf_endpoint=hub.endpoint))
        for repo in ("google-like/ddpm-flat", "someone/bare-unet"):
            result = hub_ctx.engine.generate(Txt2ImgRequest(model=repo, sampler_name="DDIM", steps=2, seed=1))
            assert result.images[0].image.size == (16, 16) and f"Model: {repo}" in result.images[0].infotext
        fetched = [path for method, path, _ in hub.log_snapshot() if method == "GET" and "/resolve/" in path]
    assert not any(p.endswith("README.md") for p in fetched)
    kinds = {r.name: r.kind for r in hub_ctx.store.refresh()}  # found again in the HF cache
    assert kinds["google-like/ddpm-flat"].architecture is Architecture.UNCONDITIONAL
    assert kinds["someone/bare-unet"].architecture is Architecture.UNCONDITIONAL
