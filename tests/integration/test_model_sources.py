"""The model store on every real source: folder, single file, HF cache, HTTP download.

Everything here runs real diffusers/transformers classes on tiny random weights;
nothing is mocked.
"""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from pipelines.context import AppContext
from pipelines.errors import ModelUnavailableError, UnsupportedModelError
from pipelines.infotext.codec import parse_infotext
from pipelines.models.architecture import Architecture
from pipelines.models.hub import select_files
from pipelines.outputs import read_infotext
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import install_models, make_settings
from tests.support.hf_cache import install_into_hf_cache
from tests.support.hub_server import LocalHub

SMALL = dict(prompt="a lighthouse", width=64, height=64, steps=3, seed=11)


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image).astype(int)


def test_folder_and_single_file_with_sidecar_give_the_same_image(app_context):
    folder = app_context.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sd15"))
    single = app_context.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sd15-file"))
    record = app_context.store.registry.find("tiny-sd15-file")
    assert record.kind.architecture is Architecture.SD1 and record.config_path is not None
    # same weights through two loaders: equal up to float summation order on CPU
    assert np.abs(pixels(folder) - pixels(single)).max() <= 2
    file_hash = hashlib.sha256(record.path.read_bytes()).hexdigest()
    info = parse_infotext(read_infotext(single.paths[0]))
    assert info["Model hash"] == file_hash[:10] and info["Model"] == "tiny-sd15-file"
    assert record.title == f"tiny-sd15-file [{file_hash[:10]}]"


def test_single_file_without_sidecar_fetches_only_reference_configs(tmp_path, model_store):
    install_models(model_store, tmp_path, ["tiny-sd15-file.safetensors"])
    shutil.rmtree(tmp_path / "models/Stable-diffusion/tiny-sd15-file.config")
    with LocalHub() as hub:
        hub.add_repo("reference/sd15", model_store / "tiny-sd15")
        settings = make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint,
                                 reference_configs={"sd1": "reference/sd15"})
        ctx = AppContext.build(settings)
        result = ctx.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sd15-file"))
        fetched = [path for method, path, _ in hub.log_snapshot() if method == "GET" and "/resolve/" in path]
    assert result.paths and fetched
    assert not any(p.endswith(".safetensors") for p in fetched), fetched  # configs only, never weights


def test_hf_cache_repo_loads_offline_and_is_hashed_from_its_blob(tmp_path, model_store):
    hf_home = tmp_path / "hf"
    install_into_hf_cache(model_store / "tiny-sd15", "atelier-test/cached-sd15", hf_home)
    ctx = AppContext.build(make_settings(tmp_path / "data", hf_cache_dir=hf_home / "hub", hub_offline=True))
    record = ctx.store.registry.find("atelier-test/cached-sd15")
    assert record.installed and record.kind.architecture is Architecture.SD1
    unet = model_store / "tiny-sd15" / "unet" / "diffusion_pytorch_model.safetensors"
    assert record.sha256 == hashlib.sha256(unet.read_bytes()).hexdigest()
    result = ctx.engine.generate(Txt2ImgRequest(**SMALL, model="atelier-test/cached-sd15"))
    assert "Model: atelier-test/cached-sd15" in result.images[0].infotext


def test_hub_download_over_http_reports_bytes_then_works_offline(tmp_path, model_store):
    with LocalHub() as hub:
        hub.add_repo("atelier-test/remote-sd15", model_store / "tiny-sd15")
        ctx = AppContext.build(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))
        updates = []
        result = ctx.engine.generate(Txt2ImgRequest(**SMALL, model="atelier-test/remote-sd15"),
                                     on_progress=updates.append)
    byte_updates = [u for u in updates if u.unit == "bytes"]
    weights = sum(f.stat().st_size for f in (model_store / "tiny-sd15").rglob("*.safetensors"))
    assert byte_updates and byte_updates[-1].step == byte_updates[-1].total >= weights
    assert [u.step for u in byte_updates] == sorted(u.step for u in byte_updates)
    assert result.paths
    # a new process with the Hub unreachable finds it in the cache
    offline = AppContext.build(make_settings(tmp_path, hub_offline=True))
    assert offline.store.registry.find("atelier-test/remote-sd15").installed
    again = offline.engine.generate(Txt2ImgRequest(**SMALL, model="atelier-test/remote-sd15"))
    assert np.array_equal(pixels(again), pixels(result))


def test_first_generate_without_models_and_unreachable_hub_says_what_to_do(tmp_path):
    with LocalHub() as hub:
        hub.set_offline(True)
        ctx = AppContext.build(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))
        with pytest.raises(ModelUnavailableError) as err:
            ctx.engine.generate(Txt2ImgRequest(prompt="x", width=64, height=64, steps=1))
    message = str(err.value)
    assert ctx.settings.default_model in message and "could not be reached" in message
    assert str(tmp_path / "models" / "Stable-diffusion") in message


def test_offline_mode_names_the_missing_model(tmp_path):
    ctx = AppContext.build(make_settings(tmp_path, hub_offline=True))
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE"):
        ctx.engine.generate(Txt2ImgRequest(prompt="x", width=64, height=64, steps=1))


def test_swapping_back_to_a_cached_model_touches_no_file(app_context):
    first = app_context.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sd15"))
    app_context.selection.select("tiny-sd15-b")
    # Remove the first model from disk: only the in-memory cache can serve it now.
    shutil.rmtree(app_context.settings.checkpoint_dirs[0] / "tiny-sd15")
    app_context.selection.select("tiny-sd15")
    again = app_context.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sd15"))
    assert np.array_equal(pixels(first), pixels(again))


def test_byte_budget_evicts_least_recently_used_but_never_a_model_in_use(tmp_path, model_store):
    install_models(model_store, tmp_path, ["tiny-sd15", "tiny-sd15-b"])
    probe = AppContext.build(make_settings(tmp_path))
    one_model = probe.selection.select("tiny-sd15").pipeline
    size = sum(p.numel() * p.element_size() for m in one_model.components.values()
               if isinstance(m, torch.nn.Module) for p in m.parameters())
    ctx = AppContext.build(make_settings(tmp_path, ram_budget_bytes=int(size * 1.5)))
    a = ctx.selection.select("tiny-sd15")
    ctx.selection.select("tiny-sd15-b")
    assert ctx.store.cache.keys() == [ctx.store.registry.find("tiny-sd15-b").ref.key]
    with ctx.store.use("tiny-sd15-b"):
        ctx.selection.select("tiny-sd15")  # over budget: b is in use, so both stay
        assert len(ctx.store.cache.keys()) == 2
    assert a.record.name == "tiny-sd15"


def test_sdxl_folder_is_detected_and_generates(tmp_path, model_store):
    install_models(model_store, tmp_path, ["tiny-sdxl"])
    ctx = AppContext.build(make_settings(tmp_path))
    assert ctx.store.registry.find("tiny-sdxl").kind.architecture is Architecture.SDXL
    result = ctx.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sdxl"))
    assert result.images[0].image.size == (64, 64)


def test_foreign_and_pickled_files_are_reported_not_loaded(tmp_path):
    ckpts = tmp_path / "models" / "Stable-diffusion"
    ckpts.mkdir(parents=True)
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 4)},
              str(ckpts / "my-lora.safetensors"))
    (ckpts / "old.ckpt").write_bytes(b"not really a pickle")
    ctx = AppContext.build(make_settings(tmp_path))
    names = [r.name for r in ctx.store.checkpoints()]
    assert "old" not in names  # pickles are not even listed without --allow-pickle
    lora = ctx.store.registry.find("my-lora")
    assert "LoRA" in lora.problem
    with pytest.raises(UnsupportedModelError, match="LoRA"):
        ctx.engine.generate(Txt2ImgRequest(prompt="x", width=64, height=64, steps=1, model="my-lora"))
    allowed = AppContext.build(make_settings(tmp_path, allow_pickle=True))
    assert "old" in [r.name for r in allowed.store.checkpoints()]


def test_download_plan_takes_safetensors_of_needed_components_only():
    files = {"model_index.json": 1, "unet/config.json": 1, "unet/diffusion_pytorch_model.safetensors": 10,
             "unet/diffusion_pytorch_model.fp16.safetensors": 5, "unet/diffusion_pytorch_model.bin": 10,
             "safety_checker/model.safetensors": 99, "vae/diffusion_pytorch_model.fp16.safetensors": 5,
             "vae/config.json": 1, "v1-5-pruned.ckpt": 999, "tokenizer/vocab.json": 1}
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"]}
    fp32 = select_files(files, index, prefer_fp16=False, allow_pickle=False)
    assert "unet/diffusion_pytorch_model.safetensors" in fp32
    assert "vae/diffusion_pytorch_model.fp16.safetensors" in fp32  # the only weights vae has
    assert not any(f.endswith((".bin", ".ckpt")) or f.startswith("safety_checker") for f in fp32)
    fp16 = select_files(files, index, prefer_fp16=True, allow_pickle=False)
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in fp16
    assert "unet/diffusion_pytorch_model.safetensors" not in fp16


def test_interrupted_download_fails_clearly_and_the_retry_completes(tmp_path, model_store):
    with LocalHub() as hub:
        hub.add_repo("atelier-test/flaky-sd15", model_store / "tiny-sd15")
        # more cuts than huggingface_hub's own in-call retries, so the first attempt fails
        hub.fail_once("atelier-test/flaky-sd15", "unet/diffusion_pytorch_model.safetensors", after_bytes=1000, times=6)
        ctx = AppContext.build(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))
        request = Txt2ImgRequest(**SMALL, model="atelier-test/flaky-sd15")
        with pytest.raises(ModelUnavailableError, match="atelier-test/flaky-sd15"):
            ctx.store.download("atelier-test/flaky-sd15")
        result = ctx.engine.generate(request)  # pressing Generate again resumes cleanly
    assert result.paths
    blobs = list((tmp_path / "hf-cache").rglob("*.incomplete"))
    assert blobs == []


def test_private_repo_needs_hf_token(tmp_path, model_store, monkeypatch):
    with LocalHub() as hub:
        hub.add_repo("atelier-test/private-sd15", model_store / "tiny-sd15")
        hub.require_token("hf_secret")
        ctx = AppContext.build(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        with pytest.raises(Exception, match="HF_TOKEN"):
            ctx.store.download("atelier-test/private-sd15")
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        assert ctx.store.download("atelier-test/private-sd15").installed


def test_symlinked_model_folder_is_found(tmp_path, model_store):
    ckpts = tmp_path / "models" / "Stable-diffusion"
    ckpts.mkdir(parents=True)
    (ckpts / "linked-sd15").symlink_to(model_store / "tiny-sd15", target_is_directory=True)
    (ckpts / "loop").symlink_to(ckpts, target_is_directory=True)  # must not recurse forever
    ctx = AppContext.build(make_settings(tmp_path))
    record = ctx.store.registry.find("linked-sd15")
    assert record.kind.architecture is Architecture.SD1 and record.size_bytes > 0
    assert ctx.engine.generate(Txt2ImgRequest(**SMALL, model="linked-sd15")).paths
