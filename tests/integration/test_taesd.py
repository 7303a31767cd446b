"""TAESD through the engine, on a tiny real ``AutoencoderTiny``: found as its own kind of model (A1111's
``models/VAE-taesd``, ``models/VAE``; folder or single file), decoding the final image (what raw diffusers
decodes with it, written in the infotext and pasted back), decoding live previews, encoding img2img's init
image, refused naming what to install when the model's family has none; and the fast preset's core."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from pipelines.context import AppContext
from pipelines.errors import ValidationError
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.paste import paste_parameters
from pipelines.models.architecture import Architecture
from pipelines.models.hub_search import classify
from pipelines.models.kinds import ModelType
from pipelines.models.taesd_files import config_from_shapes
from pipelines.networks.taesd import find_taesd
from pipelines.networks.vae import vae_choices
from pipelines.presets import fast_preset
from pipelines.requests import Img2ImgRequest, Txt2ImgRequest
from tests.support.apps import install_models, make_settings
from tests.support.hf_cache import install_into_hf_cache
from tests.support.tiny_loras import save_kohya_lora_for
from tests.support.tiny_taesd import save_tiny_taesd, save_tiny_taesd_file
from webui.tabs.models import model_rows

BASE = Txt2ImgRequest(prompt="a lighthouse", width=64, height=64, steps=2, seed=5, sampler_name="Euler",
                      save_images=False, model="tiny-sd15")


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, model_store) -> AppContext:
    data = tmp_path_factory.mktemp("taesd-data")
    install_models(model_store, data, ["tiny-sd15", "tiny-sdxl"])
    shutil.copytree(model_store / "tiny-sd15", data / "models" / "Stable-diffusion" / "tiny-sd-turbo")
    save_tiny_taesd(data / "models" / "VAE-taesd" / "taesd", seed=1)
    save_tiny_taesd_file(data / "models" / "VAE" / "taesd-copy.safetensors", seed=1)  # the same weights, one file
    loras = data / "models" / "Lora"
    save_kohya_lora_for(model_store / "tiny-sd15", loras / "lcm-lora-sdv1-5.safetensors", seed=3)
    plain = save_kohya_lora_for(model_store / "tiny-sd15", loras / "speedy.safetensors", seed=4)
    save_file(load_file(str(plain)), str(plain), metadata={"ss_output_name": "LCM_LoRA_sd15"})  # named inside only
    save_kohya_lora_for(model_store / "tiny-sd15", loras / "style.safetensors", seed=5)
    hub_copy = save_tiny_taesd(tmp_path_factory.mktemp("hub-taesd") / "taesd", seed=1)
    install_into_hf_cache(hub_copy, "madebyollin/taesd", data / "hf")  # as a download of the Hub repo leaves it
    return AppContext.build(make_settings(data, hf_cache_dir=data / "hf" / "hub"))


def test_taesd_is_a_kind_of_its_own_from_a_folder_or_a_single_file(ctx):
    records = {r.name: r for r in ctx.store.records(ModelType.TAESD)}
    assert set(records) == {"taesd", "taesd-copy", "madebyollin/taesd"} and not any(r.problem for r in records.values())
    assert find_taesd(ctx.store, None).name == "madebyollin/taesd"  # named as the official repo: picked for SD 1.x
    assert find_taesd(ctx.store, Architecture.SDXL) is None  # no TAESDXL here
    assert "taesd-copy.safetensors" not in vae_choices(ctx.store)  # not an SD VAE choice
    listed = {row[0]: row[3] for row in model_rows(ctx.store)}  # the Models tab's table
    assert listed["taesd"] == listed["taesd-copy"] == "TAESD (tiny VAE)"
    folder = ctx.store.load(records["taesd"], model_type=ModelType.TAESD).model
    single = ctx.store.load(records["taesd-copy"], model_type=ModelType.TAESD).model
    hub = ctx.store.load(records["madebyollin/taesd"], model_type=ModelType.TAESD).model
    assert hub.state_dict().keys() == folder.state_dict().keys()
    assert type(single).__name__ == "AutoencoderTiny"
    for key, value in folder.state_dict().items():
        assert torch.equal(value, single.state_dict()[key]), key


def test_hub_search_installs_taesd_repos_as_taesd():
    for repo, tags in (("madebyollin/taesd", []), ("madebyollin/taesdxl", []),
                       ("org/tiny-ae", ["diffusers:AutoencoderTiny"])):
        assert classify(repo, tags=tags, library="diffusers", pipeline_tag=None, files=None)[0] is ModelType.TAESD


def test_the_final_decode_with_taesd_is_raw_diffusers_with_that_decoder_and_is_pasted_back(ctx):
    from diffusers import AutoencoderTiny, EulerDiscreteScheduler, StableDiffusionPipeline

    full = ctx.engine.generate(BASE)
    tiny = ctx.engine.generate(replace(BASE, sd_vae_decode_method="TAESD"))
    text = tiny.images[0].infotext
    assert "Model: tiny-sd15, VAE Decoder: TAESD, RNG: CPU" in text and "VAE Decoder" not in full.images[0].infotext
    assert not np.array_equal(pixels(tiny), pixels(full))
    checkpoint = ctx.settings.models_dir / "Stable-diffusion" / "tiny-sd15"
    taesd = AutoencoderTiny.from_pretrained(str(ctx.settings.models_dir / "VAE-taesd" / "taesd"))
    raw = StableDiffusionPipeline.from_pretrained(str(checkpoint), vae=taesd, safety_checker=None,
                                                  feature_extractor=None, requires_safety_checker=False)
    raw.scheduler = EulerDiscreteScheduler.from_config(raw.scheduler.config)
    expected = raw(BASE.prompt, negative_prompt="", num_inference_steps=2, guidance_scale=7.0, width=64, height=64,
                   generator=torch.Generator("cpu").manual_seed(5)).images[0]
    assert np.abs(pixels(tiny).astype(int) - np.asarray(expected).astype(int)).max() <= 1
    assert np.array_equal(pixels(ctx.engine.generate(BASE)), pixels(full))  # the checkpoint's own VAE untouched
    pasted = paste_parameters(parse_infotext(text), ctx.store)
    assert pasted.fields["sd_vae_decode_method"] == "TAESD"
    assert paste_parameters(parse_infotext(full.images[0].infotext), ctx.store).fields["sd_vae_decode_method"] == \
        "Full"


def test_live_previews_decoded_by_taesd_differ_from_the_cheap_map(ctx):
    def previews(method: str) -> list[Image.Image]:
        shown: list[Image.Image] = []
        ctx.engine.generate(replace(BASE, steps=4, show_progress_type=method),
                            on_progress=lambda u: shown.append(u.preview) if u.preview is not None else None)
        return shown

    cheap, tiny, full = previews("Approx cheap"), previews("TAESD"), previews("Full")
    assert len(cheap) == len(tiny) == len(full) == 1  # every 2 steps, not after the last
    assert tiny[0].size == cheap[0].size == (64, 64)
    assert not np.array_equal(np.asarray(tiny[0]), np.asarray(cheap[0]))
    assert not np.array_equal(np.asarray(tiny[0]), np.asarray(full[0]))


def test_img2img_encodes_with_taesd_when_asked_and_says_so(ctx):
    init = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    job = Img2ImgRequest(prompt="a lighthouse", init_image=init, width=64, height=64, steps=2, seed=3,
                         sampler_name="Euler", denoising_strength=0.5, save_images=False, model="tiny-sd15")
    full = ctx.engine.generate(job)
    encoded = ctx.engine.generate(replace(job, sd_vae_encode_method="TAESD"))
    both = ctx.engine.generate(replace(job, sd_vae_encode_method="TAESD", sd_vae_decode_method="TAESD"))
    decoded = ctx.engine.generate(replace(job, sd_vae_decode_method="TAESD"))
    assert "VAE Encoder: TAESD" in encoded.images[0].infotext and "VAE Decoder" not in encoded.images[0].infotext
    assert "VAE Decoder: TAESD, VAE Encoder: TAESD" in both.images[0].infotext
    results = [pixels(r) for r in (full, encoded, both, decoded)]
    assert all(not np.array_equal(a, b) for i, a in enumerate(results) for b in results[i + 1:])
    pasted = paste_parameters(parse_infotext(encoded.images[0].infotext), ctx.store)
    assert pasted.fields["sd_vae_encode_method"] == "TAESD"


@pytest.mark.parametrize("field", ["sd_vae_decode_method", "show_progress_type"])
def test_a_missing_taesdxl_is_refused_naming_the_setting_what_to_install_and_where(ctx, field):
    with pytest.raises(ValidationError, match=r"TAESDXL for SDXL models.*madebyollin/taesdxl.*VAE-taesd") as caught:
        ctx.engine.generate(replace(BASE, model="tiny-sdxl", **{field: "TAESD"}))
    assert caught.value.field == field
    with pytest.raises(ValidationError) as bad:
        ctx.engine.generate(replace(BASE, sd_vae_decode_method="Tiny"))
    assert bad.value.field == "sd_vae_decode_method"


def test_sdxl_decodes_with_a_taesdxl_once_one_is_installed(ctx):
    folder = save_tiny_taesd(ctx.settings.models_dir / "VAE-taesd" / "taesdxl", seed=2)
    ctx.store.refresh()
    try:
        job = replace(BASE, model="tiny-sdxl", sd_vae_decode_method="TAESD", show_progress_type="TAESD")
        result = ctx.engine.generate(job)
        assert "VAE Decoder: TAESD" in result.images[0].infotext
        full = ctx.engine.generate(replace(job, sd_vae_decode_method="Full"))
        assert not np.array_equal(pixels(result), pixels(full))
    finally:
        shutil.rmtree(folder)
        ctx.store.refresh()


def test_a_single_file_of_the_real_taesd_shape_gets_its_config_from_its_tensors():
    from diffusers import AutoencoderTiny

    real = AutoencoderTiny()  # TAESD's own shape: 64 channels, (1, 3, 3, 3) encoder and (3, 3, 3, 1) decoder blocks
    config = config_from_shapes({k: tuple(v.shape) for k, v in real.state_dict().items()})
    assert config == {k: tuple(real.config[k]) if isinstance(real.config[k], list | tuple) else real.config[k]
                      for k in config}
    AutoencoderTiny(**config).load_state_dict(real.state_dict(), strict=True)


def test_the_fast_preset_reads_the_model_family_and_lcm_loras_in_the_prompt(ctx):
    turbo = fast_preset(ctx.store, "tiny-sd-turbo")
    assert (turbo.family, turbo.steps, turbo.cfg_scale, turbo.sampler_name) == ("Turbo", 1, 1.0, "Euler a")
    assert turbo.sd_vae_decode_method == "TAESD"  # installed for SD 1.x
    lcm = fast_preset(ctx.store, "tiny-sd15", "a fox <lora:lcm-lora-sdv1-5:1>")
    assert (lcm.family, lcm.reason, lcm.steps, lcm.cfg_scale, lcm.sampler_name) == \
        ("LCM", "LoRA lcm-lora-sdv1-5", 4, 1.0, "LCM")
    assert fast_preset(ctx.store, "tiny-sd15", "<lora:speedy:1>").family == "LCM"  # its metadata says LCM
    assert fast_preset(ctx.store, "tiny-sdxl", "<lora:lcm-lora-sdv1-5>").sd_vae_decode_method == "Full"  # no TAESDXL
    with pytest.raises(ValidationError, match="not a few-step model") as caught:
        fast_preset(ctx.store, "tiny-sd15", "a fox <lora:style:1>")
    assert caught.value.field == "model"
