"""Hub search through the real path: huggingface_hub's list_models against the local Hub, each result's
kind told from its tags and files, and installing a result as that kind, with byte progress."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipelines.errors import ValidationError
from pipelines.models import hub_search
from pipelines.models.hub_search import HubSearchUnavailable, classify
from pipelines.models.kinds import ModelType
from pipelines.models.store import ModelStore
from pipelines.progress import ProgressUpdate
from tests.support.apps import make_settings
from tests.support.hub_server import LocalHub
from tests.support.tiny_networks import save_embedding, save_kohya_lora
from tests.support.tiny_upscalers import save_rrdbnet, save_sd_x4_upscaler


def card(folder: Path, **meta) -> None:
    """A model card (README.md with YAML front matter), which is where the Hub reads tags and licence."""
    lines = []
    for key, value in meta.items():
        lines += [f"{key}:"] + [f"- {v}" for v in value] if isinstance(value, list) else [f"{key}: {value}"]
    (folder / "README.md").write_text("---\n" + "\n".join(lines) + "\n---\n# model\n")


@pytest.fixture(scope="module")
def repos(tmp_path_factory, model_store) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub-search-repos")
    lora = root / "lora"
    save_kohya_lora(lora / "pixel-small.safetensors", rank=2, seed=1)
    save_kohya_lora(lora / "pixel-art.safetensors", rank=8, seed=2)  # the larger file
    card(lora, license="openrail++", tags=["lora", "stable-diffusion", "text-to-image"], library_name="diffusers")
    upscaler = root / "upscaler"
    save_rrdbnet(upscaler / "4x-tiny-esrgan.safetensors", scale=4, seed=1)
    card(upscaler, license="bsd-3-clause", tags=["super-resolution", "esrgan"], pipeline_tag="image-to-image")
    pickled = root / "pickled"
    save_rrdbnet(pickled / "4x-old.pth", scale=4, seed=2)
    card(pickled, tags=["super-resolution"])
    embedding = root / "embedding"
    save_embedding(embedding / "tiny-style.safetensors")
    card(embedding, tags=["textual-inversion", "stable-diffusion"])
    x4 = save_sd_x4_upscaler(root / "x4")
    flux = root / "flux"
    flux.mkdir()
    (flux / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    text = root / "text"
    text.mkdir()
    (text / "model.safetensors").write_bytes(b"not a diffusion model")
    card(text, tags=["text-classification"], library_name="transformers")
    return {"atelier-test/tiny-sd15": model_store / "tiny-sd15", "someone/pixel-art-lora": lora,
            "someone/tiny-esrgan": upscaler, "someone/old-esrgan": pickled, "someone/tiny-embedding": embedding,
            "atelier-test/tiny-x4-upscaler": x4, "someone/tiny-flux": flux, "someone/tiny-text": text}


DOWNLOADS = {"atelier-test/tiny-sd15": 900, "someone/pixel-art-lora": 500, "someone/tiny-esrgan": 300,
             "someone/old-esrgan": 20, "someone/tiny-embedding": 40, "atelier-test/tiny-x4-upscaler": 60,
             "someone/tiny-flux": 800, "someone/tiny-text": 1000}


@pytest.fixture(scope="module")
def hub(repos):
    with LocalHub() as server:
        for repo_id, folder in repos.items():
            server.add_repo(repo_id, folder, downloads=DOWNLOADS[repo_id], likes=DOWNLOADS[repo_id] // 100)
        yield server


@pytest.fixture
def store(tmp_path, hub) -> ModelStore:
    return ModelStore(make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint))


def test_search_returns_the_repos_most_downloaded_first_with_their_kinds(store, repos):
    found = {m.repo_id: m for m in hub_search.search_hub(store.settings, "tiny")}
    assert list(found) == ["someone/tiny-text", "atelier-test/tiny-sd15", "someone/tiny-flux", "someone/tiny-esrgan",
                           "atelier-test/tiny-x4-upscaler", "someone/tiny-embedding"]
    kinds = {repo: (m.model_type, m.pipeline, m.installable) for repo, m in found.items()}
    assert kinds == {
        "atelier-test/tiny-sd15": (ModelType.CHECKPOINT, True, True),
        "atelier-test/tiny-x4-upscaler": (ModelType.SD_X4_UPSCALER, True, True),
        "someone/tiny-esrgan": (ModelType.UPSCALER, False, True),
        "someone/tiny-embedding": (ModelType.EMBEDDING, False, True),
        "someone/tiny-flux": (None, True, False),
        "someone/tiny-text": (None, False, False),
    }
    assert "FluxPipeline" in found["someone/tiny-flux"].note
    esrgan = found["someone/tiny-esrgan"]
    assert (esrgan.downloads, esrgan.likes, esrgan.license) == (300, 3, "bsd-3-clause")
    assert esrgan.files == ("4x-tiny-esrgan.safetensors",) and esrgan.pipeline_tag == "image-to-image"
    assert esrgan.size_bytes == sum(f.stat().st_size for f in repos["someone/tiny-esrgan"].iterdir())  # usedStorage
    sd = found["atelier-test/tiny-sd15"]
    assert sd.library == "diffusers" and sd.pipeline_tag == "text-to-image" and sd.size_bytes > 100_000
    assert [m.repo_id for m in hub_search.search_hub(store.settings, "tiny", limit=2)] == list(found)[:2]


def test_lora_installs_its_largest_file_into_the_lora_folder_with_byte_progress(store, repos):
    (lora,) = hub_search.search_hub(store.settings, "pixel-art")
    assert (lora.model_type, lora.license, lora.pipeline) == (ModelType.LORA, "openrail++", False)
    assert set(lora.files) == {"pixel-art.safetensors", "pixel-small.safetensors"}
    updates: list[ProgressUpdate] = []
    record = hub_search.install(store, lora, updates.append)
    expected = repos["someone/pixel-art-lora"] / "pixel-art.safetensors"
    assert record.type is ModelType.LORA and record.name == "pixel-art"
    assert record.path == store.settings.lora_folders[0] / "pixel-art.safetensors"
    assert record.path.read_bytes() == expected.read_bytes()
    assert record in store.records(ModelType.LORA) and record.architecture is not None
    assert updates and {u.unit for u in updates} == {"bytes"}
    assert updates[-1].step == updates[-1].total == expected.stat().st_size

    chosen = hub_search.install(store, lora, filename="pixel-small.safetensors")  # the caller's pick
    assert chosen.path == store.settings.lora_folders[0] / "pixel-small.safetensors"
    assert {r.name for r in store.records(ModelType.LORA)} == {"pixel-art", "pixel-small"}
    with pytest.raises(ValidationError, match="no weight file 'other.safetensors'"):
        hub_search.install(store, lora, filename="other.safetensors")


def test_upscaler_and_embedding_install_into_their_folders_and_load(store):
    found = {m.repo_id: m for m in hub_search.search_hub(store.settings, "someone/tiny")}
    upscaler = hub_search.install(store, found["someone/tiny-esrgan"])
    assert upscaler.path == store.settings.upscaler_dirs[0] / "4x-tiny-esrgan.safetensors"
    assert [r.name for r in store.records(ModelType.UPSCALER)] == ["4x-tiny-esrgan"]
    assert store.load(upscaler).model.architecture.id == "ESRGAN"
    embedding = hub_search.install(store, found["someone/tiny-embedding"])
    assert embedding.path == store.settings.embedding_folders[0] / "tiny-style.safetensors"
    assert [r.name for r in store.records(ModelType.EMBEDDING)] == ["tiny-style"]


def test_diffusers_pipelines_install_whole_into_the_hf_cache(store):
    found = {m.repo_id: m for m in hub_search.search_hub(store.settings, "atelier-test")}
    checkpoint = hub_search.install(store, found["atelier-test/tiny-sd15"])
    assert checkpoint.type is ModelType.CHECKPOINT and checkpoint.installed and checkpoint.kind.label == "SD 1.x"
    assert checkpoint.path.is_relative_to(store.settings.hf_cache_dir)
    x4 = hub_search.install(store, found["atelier-test/tiny-x4-upscaler"])
    assert x4.type is ModelType.SD_X4_UPSCALER and x4 in store.records(ModelType.SD_X4_UPSCALER)
    with pytest.raises(ValidationError, match="FluxPipeline"):
        hub_search.install(store, hub_search.search_hub(store.settings, "flux")[0])


def test_pickled_only_repos_need_allow_pickle(tmp_path, hub):
    settings = make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint)
    (refused,) = hub_search.search_hub(settings, "old-esrgan")
    assert refused.model_type is ModelType.UPSCALER and not refused.installable
    assert "--allow-pickle" in refused.problem
    with pytest.raises(ValidationError, match="--allow-pickle"):
        hub_search.install(ModelStore(settings), refused)
    allowed = make_settings(tmp_path / "allowed", hub_offline=False, hf_endpoint=hub.endpoint, allow_pickle=True)
    (model,) = hub_search.search_hub(allowed, "old-esrgan")
    record = hub_search.install(ModelStore(allowed), model)
    assert record.path.name == "4x-old.pth" and record.type is ModelType.UPSCALER


def test_offline_flag_says_search_is_off_without_asking_the_hub(tmp_path, hub):
    hub.clear_log()
    with pytest.raises(HubSearchUnavailable) as err:
        hub_search.search_hub(make_settings(tmp_path, hf_endpoint=hub.endpoint), "tiny")  # hub_offline=True
    assert err.value.reason == "offline" and "Hub access is off (HF_HUB_OFFLINE" in str(err.value)
    assert hub.log_snapshot() == []


def test_unreachable_endpoint_says_so_at_once(tmp_path, hub):
    settings = make_settings(tmp_path, hub_offline=False, hf_endpoint=hub.endpoint)
    hub.set_offline(True)  # connection refused
    try:
        start = time.perf_counter()
        with pytest.raises(HubSearchUnavailable) as err:
            hub_search.search_hub(settings, "tiny")
        assert time.perf_counter() - start < 10  # not huggingface_hub's ~20 s of retries
    finally:
        hub.set_offline(False)
    assert err.value.reason == "unreachable" and f"{hub.endpoint} could not be reached" in str(err.value)
    assert [m.repo_id for m in hub_search.search_hub(settings, "esrgan")] == ["someone/tiny-esrgan",
                                                                               "someone/old-esrgan"]


def test_an_empty_query_names_the_field(tmp_path):
    with pytest.raises(ValidationError) as err:
        hub_search.search_hub(make_settings(tmp_path, hub_offline=False), "  ")
    assert err.value.field == "query"


@pytest.mark.parametrize(("tags", "library", "pipeline_tag", "files", "expected"), [
    (["diffusers:StableDiffusionXLPipeline"], "diffusers", "text-to-image", None, (ModelType.CHECKPOINT, True)),
    ([], "diffusers", None, ["model_index.json", "unet/x.safetensors"], (ModelType.CHECKPOINT, True)),
    (["diffusers:StableDiffusionUpscalePipeline"], "diffusers", None, None, (ModelType.SD_X4_UPSCALER, True)),
    (["diffusers:FluxPipeline"], "diffusers", "text-to-image", ["model_index.json"], (None, True)),
    (["lora", "stable-diffusion"], "diffusers", "text-to-image", ["a.safetensors"], (ModelType.LORA, False)),
    (["template:sd-lora"], None, None, ["a.safetensors"], (ModelType.LORA, False)),
    (["textual_inversion"], None, None, ["e.safetensors"], (ModelType.EMBEDDING, False)),
    (["esrgan"], None, "image-to-image", ["4x.pth"], (ModelType.UPSCALER, False)),
    ([], None, None, ["vae.safetensors"], (None, False)),
    (["stable-diffusion"], None, None, ["model.safetensors"], (ModelType.CHECKPOINT, False)),
    ([], None, "text-to-image", ["model.safetensors"], (ModelType.CHECKPOINT, False)),
    (["text-classification"], "transformers", None, ["model.safetensors"], (None, False)),
    (["lora", "peft"], "peft", "text-generation", ["adapter_model.safetensors"], (None, False)),
])
def test_classify(tags, library, pipeline_tag, files, expected):
    model_type, pipeline, _note = classify("org/some-model", tags=tags, library=library, pipeline_tag=pipeline_tag,
                                           files=files)
    assert (model_type, pipeline) == expected


def test_classify_reads_vae_from_the_repo_name_or_tags():
    assert classify("org/sd-vae-ft-mse", tags=[], library=None, pipeline_tag=None, files=[])[0] is ModelType.VAE
    assert classify("org/anything", tags=["vae"], library=None, pipeline_tag=None, files=[])[0] is ModelType.VAE


def test_diffusers_layout_component_repos_are_not_offered_as_single_files():
    from huggingface_hub.hf_api import ModelInfo

    info = ModelInfo(id="org/sd-vae-ft-mse", tags=["diffusers"], library_name="diffusers", downloads=1, likes=0,
                     siblings=[{"rfilename": "config.json"}, {"rfilename": "diffusion_pytorch_model.safetensors"}])
    model = hub_search.hub_model(info)
    assert model.model_type is ModelType.VAE and not model.installable and "diffusers-layout" in model.problem
