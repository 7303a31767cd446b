"""The SD VAE setting through the engine: a VAE file decodes the job's images, lands in the infotext and
leaves the cached checkpoint as it was; Automatic finds ``NAME.vae.safetensors``; misfits are refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipelines.context import AppContext
from pipelines.errors import ValidationError
from pipelines.infotext.paste import paste_parameters
from pipelines.models.architecture import Architecture
from pipelines.models.kinds import ModelType
from pipelines.networks.vae import vae_choices
from pipelines.requests import Refiner, Txt2ImgRequest
from tests.support.apps import install_models, make_settings
from tests.support.tiny_networks import save_vae_file, save_vae_folder

BASE = Txt2ImgRequest(prompt="a lighthouse", width=64, height=64, steps=2, seed=5, sampler_name="Euler",
                      save_images=False, model="tiny-sd15", sd_vae="None")


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, model_store) -> AppContext:
    data = tmp_path_factory.mktemp("vae-data")
    install_models(model_store, data, ["tiny-sd15", "tiny-sd15-file.safetensors"])
    vaes = data / "models" / "VAE"
    save_vae_file(vaes / "ft-original.safetensors", seed=11, layout="original")  # A1111's usual download
    save_vae_file(vaes / "ft-diffusers.safetensors", seed=11, layout="diffusers")  # the same weights
    save_vae_file(vaes / "wide.safetensors", latent_channels=16)  # an SD3/Flux-like VAE
    save_vae_file(vaes / "deep.safetensors", layers_per_block=2, layout="original")  # same latents, other design
    save_vae_folder(vaes / "xl-vae", scaling_factor=0.13025)  # an SDXL VAE (diffusers folder)
    save_vae_file(data / "models" / "Stable-diffusion" / "tiny-sd15-file.vae.safetensors", seed=12,
                  layout="original")
    return AppContext.build(make_settings(data))


def test_a_vae_file_changes_the_decode_lands_in_the_infotext_and_leaves_no_trace(ctx):
    own = ctx.engine.generate(BASE)
    original = ctx.engine.generate(replace(BASE, sd_vae="ft-original.safetensors"))
    diffusers = ctx.engine.generate(replace(BASE, sd_vae="ft-diffusers"))  # the name without extension works too
    assert not np.array_equal(pixels(original), pixels(own))
    assert np.array_equal(pixels(original), pixels(diffusers))  # both layouts load to the same weights
    record = ctx.store.find("ft-original.safetensors", ModelType.VAE)
    assert record.sha256 is not None  # hashed when used
    text = original.images[0].infotext
    assert f"Model: tiny-sd15, VAE hash: {record.sha256[:10]}, VAE: ft-original.safetensors, " in text
    assert (original.info["sd_vae_name"], original.info["sd_vae_hash"]) == ("ft-original.safetensors",
                                                                             record.sha256[:10])
    assert "VAE" not in own.images[0].infotext and own.info["sd_vae_name"] is None
    assert np.array_equal(pixels(ctx.engine.generate(BASE)), pixels(own))  # the checkpoint's own VAE is untouched
    held = ctx.store.loaded(record, ModelType.VAE).model
    assert np.array_equal(pixels(ctx.engine.generate(replace(BASE, sd_vae=record.sha256[:10]))), pixels(original))
    assert ctx.store.loaded(record, ModelType.VAE).model is held  # used again (by hash) without reloading it


def test_automatic_takes_the_vae_beside_the_checkpoint(ctx):
    assert "tiny-sd15-file" not in {r.name for r in ctx.store.records(ModelType.CHECKPOINT) if r.problem}
    assert "tiny-sd15-file.vae.safetensors" in vae_choices(ctx.store)
    single = replace(BASE, model="tiny-sd15-file")
    automatic = ctx.engine.generate(replace(single, sd_vae="Automatic"))
    assert "VAE: tiny-sd15-file.vae.safetensors" in automatic.images[0].infotext
    assert not np.array_equal(pixels(automatic), pixels(ctx.engine.generate(single)))
    folder = ctx.engine.generate(replace(BASE, sd_vae="Automatic"))  # nothing beside tiny-sd15: its own
    assert "VAE" not in folder.images[0].infotext


@pytest.mark.parametrize(("name", "why"), [("wide.safetensors", "16 channels"), ("xl-vae", "an SDXL VAE"),
                                           ("deep.safetensors", "another VAE design"),
                                           ("ft-origin", "did you mean 'ft-original'")])
def test_a_vae_that_does_not_fit_is_refused_naming_the_field_and_both_models(ctx, name, why):
    with pytest.raises(ValidationError, match=why) as caught:
        ctx.engine.generate(replace(BASE, sd_vae=name))
    assert caught.value.field == "sd_vae"
    if name != "ft-origin":
        assert name in caught.value.message and "tiny-sd15" in caught.value.message
    if name == "xl-vae":  # told from its own config, so the extra-networks panel can mark it too
        assert ctx.store.find(name, ModelType.VAE).architecture is Architecture.SDXL


def test_pasting_an_infotext_selects_an_installed_vae_by_name_then_by_hash(ctx):
    record = ctx.store.hashed(ctx.store.find("ft-original", ModelType.VAE))
    params = {"Prompt": "x", "Steps": "2"}
    by_name = paste_parameters({**params, "VAE": "ft-original.safetensors"}, ctx.store)
    renamed = paste_parameters({**params, "VAE hash": record.sha256[:10], "VAE": "renamed.safetensors"}, ctx.store)
    assert by_name.fields["sd_vae"] == renamed.fields["sd_vae"] == "ft-original.safetensors"
    missing = paste_parameters({**params, "VAE hash": "0123456789", "VAE": "gone.safetensors"}, ctx.store)
    assert "sd_vae" not in missing.fields
    assert any("gone.safetensors [0123456789]" in note and "not installed" in note for note in missing.notes)


def test_the_vae_decodes_the_refined_image_too(refiner_app):
    ctx = refiner_app["ctx"]  # shared: the file is taken out again
    path = save_vae_file(ctx.settings.models_dir / "VAE" / "xl-ft.safetensors", seed=13, layout="original")
    ctx.store.refresh()
    try:
        request = replace(BASE, model="tiny-sdxl", refiner=Refiner("tiny-sdxl-refiner", 0.5))
        own = ctx.engine.generate(request)
        with_vae = ctx.engine.generate(replace(request, sd_vae="xl-ft.safetensors"))
    finally:
        path.unlink()
        ctx.store.refresh()
    assert "VAE: xl-ft.safetensors" in with_vae.images[0].infotext
    assert not np.array_equal(pixels(with_vae), pixels(own))  # the refiner's output went through the chosen VAE
