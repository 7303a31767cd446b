"""Pasting infotexts against the real model registry, with tiny real models.

Nothing is mocked: images are generated and read back from their PNG files, models
are found in ``models/Stable-diffusion``, the HF cache and ``cache.json``.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from pipelines.context import AppContext
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.model_match import legacy_hash
from pipelines.infotext.paste import paste_parameters, to_txt2img_request
from pipelines.infotext.png_info import read_image_metadata
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import make_settings
from tests.support.hf_cache import install_into_hf_cache
from tests.support.hub_server import LocalHub

ORIGINAL = Txt2ImgRequest(prompt="a red fox, in snow", negative_prompt="blurry", sampler_name="DPM++ 2M",
                          scheduler="Karras", steps=3, cfg_scale=6.5, width=64, height=80, seed=4321,
                          model="tiny-sd15-b")


def paste_text(ctx: AppContext, text: str):
    return paste_parameters(parse_infotext(text), ctx.store)


def line(**params: str) -> str:
    """An infotext whose params line holds ``params`` (and enough keys to count as one)."""
    keys = {"Steps": "3", "Sampler": "Euler a", "Seed": "1", **params}
    return "p\n" + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in keys.items())


def test_an_atelier_png_is_reproduced_from_its_parameters(app_context):
    made = app_context.engine.generate(ORIGINAL).images[0]
    with Image.open(made.path) as png:
        meta = read_image_metadata(png)
        original_pixels = np.asarray(png.convert("RGB"))
    assert meta.parameters == made.infotext
    pasted = paste_parameters(parse_infotext(meta.parameters), app_context.store)
    record = app_context.store.registry.find("tiny-sd15-b")
    assert pasted.model_status.found and pasted.model_status.name == "tiny-sd15-b"
    assert pasted.model_status.message == f"Model: {record.title}" and not pasted.notes
    current = Txt2ImgRequest(model="tiny-sd15", n_iter=1, batch_size=1)  # what the form holds
    request = to_txt2img_request(pasted, current)
    assert request == ORIGINAL
    again = app_context.engine.generate(request).images[0]
    assert again.infotext == made.infotext
    assert np.array_equal(np.asarray(again.image), original_pixels)


def test_model_found_by_hash_when_the_file_was_renamed(app_context):
    app_context.engine.generate(Txt2ImgRequest(prompt="x", width=64, height=64, steps=1, model="tiny-sd15-b"))
    short = app_context.store.registry.find("tiny-sd15-b").short_hash
    status = paste_text(app_context, line(Model_hash=short, Model="my-old-name")).model_status
    assert status.found and status.name == "tiny-sd15-b"
    assert "found by its hash; the image calls it my-old-name" in status.message


def test_hash_from_cache_json_is_used_after_a_restart(app_context):
    app_context.engine.generate(Txt2ImgRequest(prompt="x", width=64, height=64, steps=1, model="tiny-sd15-file"))
    short = app_context.store.registry.find("tiny-sd15-file").short_hash
    restarted = AppContext.build(app_context.settings)  # a new process: records carry no hashes yet
    assert restarted.store.registry.find("tiny-sd15-file").sha256 is None
    status = paste_text(restarted, line(Model_hash=short)).model_status
    assert status.found and status.name == "tiny-sd15-file"


def test_model_found_by_name_when_never_hashed(app_context):
    status = paste_text(app_context, line(Model_hash="0123456789", Model="tiny-sd15")).model_status
    assert status.found and status.name == "tiny-sd15" and status.message == "Model: tiny-sd15"


def test_name_match_with_another_hash_warns(app_context):
    app_context.engine.generate(Txt2ImgRequest(prompt="x", width=64, height=64, steps=1, model="tiny-sd15"))
    status = paste_text(app_context, line(Model_hash="0123456789", Model="tiny-sd15")).model_status
    assert status.found and "the image names hash 0123456789" in status.message
    assert "the result may differ" in status.message


def test_legacy_8_digit_hash_of_a_single_file(app_context):
    path = app_context.store.registry.find("tiny-sd15-file").path
    status = paste_text(app_context, line(Model_hash=legacy_hash(path))).model_status
    assert status.found and status.name == "tiny-sd15-file"


def test_missing_model_says_what_to_do(app_context):
    pasted = paste_text(app_context, line(Model_hash="6ce0161689", Model="v1-5-pruned-emaonly"))
    status = pasted.model_status
    assert not status.found and status.missing and "model" not in pasted.fields
    assert status.message == ("This image was made with v1-5-pruned-emaonly [6ce0161689]; it is not installed. "
                              "Put it in models/Stable-diffusion or download it from the Hub.")
    assert status.hub_repo_id is None
    assert pasted.messages()[0] == status.message


def test_hub_repo_id_is_offered_then_downloaded_then_found(tmp_path, model_store):
    with LocalHub() as hub:
        hub.add_repo("atelier-test/remote-sd15", model_store / "tiny-sd15")
        ctx = AppContext.build(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))
        text = line(Model_hash="abcdef0123", Model="atelier-test/remote-sd15")
        status = paste_text(ctx, text).model_status
        assert not status.found and status.hub_repo_id == "atelier-test/remote-sd15"
        assert status.message.endswith("it looks like the Hub repo atelier-test/remote-sd15, which can be downloaded.")
        ctx.store.download(status.hub_repo_id)
    after = paste_text(ctx, text).model_status
    assert after.found and after.name == "atelier-test/remote-sd15"


def test_default_model_not_downloaded_yet_is_offered(app_context):
    default = app_context.settings.default_model
    status = paste_text(app_context, line(Model=default)).model_status
    assert not status.found and status.hub_repo_id == default


def test_hf_cache_model_found_by_its_blob_hash(tmp_path, model_store):
    hf_home = tmp_path / "hf"
    install_into_hf_cache(model_store / "tiny-sd15", "atelier-test/cached-sd15", hf_home)
    ctx = AppContext.build(make_settings(tmp_path / "data", hf_cache_dir=hf_home / "hub"))
    short = ctx.store.registry.find("atelier-test/cached-sd15").short_hash
    status = paste_text(ctx, line(Model_hash=short, Model="atelier-test/cached-sd15")).model_status
    assert status.found and status.name == "atelier-test/cached-sd15" and status.hub_repo_id is None


def test_unsupported_file_with_that_name_is_explained(app_context):
    folder = app_context.settings.checkpoint_dirs[0]
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 4)},
              str(folder / "detail-lora.safetensors"))
    app_context.store.refresh()
    status = paste_text(app_context, line(Model="detail-lora")).model_status
    assert not status.found and "LoRA" in status.message and "models/Lora" in status.message


def test_loras_named_by_the_image(app_context):
    lora_dir = app_context.settings.models_dir / "Lora"
    save_file({"x": torch.zeros(1)}, str(lora_dir / "add_detail.safetensors"))
    text = ("a fox <lora:add_detail:0.6> <lora:film_grain:1>\n"
            'Steps: 3, Sampler: Euler a, Seed: 1, Model: tiny-sd15, Lora hashes: "add_detail: 7c6bad76eb54"')
    pasted = paste_text(app_context, text)
    by_name = {m.wanted_name: m for m in pasted.loras}
    assert by_name["add_detail"].found and by_name["add_detail"].wanted_hash == "7c6bad76eb54"
    assert "does not apply LoRAs yet" in by_name["add_detail"].message
    missing = by_name["film_grain"]
    assert missing.missing and missing.message == ("This image was made with LoRA film_grain; it is not installed. "
                                                   "Put it in models/Lora or download it from the Hub.")
    assert pasted.model_status.found  # the checkpoint is still found
