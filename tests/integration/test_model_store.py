"""The model store through its real paths: every kind recorded, one byte budget, two tiers, one read, one download.

Models are tiny real ones (diffusers pipelines, spandrel's ESRGAN, LoRA/embedding/VAE files) on disk or
served by the local Hub; the only thing a test gives the store is how much memory is free.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from pipelines.context import AppContext
from pipelines.errors import ModelNotFoundError
from pipelines.models.architecture import Architecture
from pipelines.models.kinds import ModelType
from pipelines.models.memory_budget import Tier
from pipelines.models.store import ModelStore
from pipelines.requests import Txt2ImgRequest
from pipelines.settings import Settings
from tests.support.apps import install_models, make_settings
from tests.support.hub_server import LocalHub
from tests.support.tiny_networks import save_embedding, save_kohya_lora, save_vae_file, save_vae_folder
from tests.support.tiny_upscalers import save_rrdbnet

SMALL = dict(prompt="a lighthouse", width=64, height=64, steps=2, seed=11)
MIB = 1 << 20


@dataclass
class GivenMemory:
    """A machine with ``capacity`` bytes per tier, of which the store's models use what they hold."""

    capacity: dict[Tier, int] = field(default_factory=dict)
    held: Callable[[Tier], int] = lambda tier: 0

    def free_bytes(self, tier: Tier) -> int:
        return self.capacity[tier] - self.held(tier)

    def total_bytes(self, tier: Tier) -> int:
        return self.capacity[tier]


def store_with(settings: Settings, *, free: int, two_tier: bool = False, ram_free: int = 1 << 40) -> ModelStore:
    """A real store on a device with room for ``free`` bytes of models beyond the store's headroom."""
    memory = GivenMemory()
    store = ModelStore(settings, memory=memory, two_tier=two_tier)
    headroom = {tier: limits.headroom_bytes for tier, limits in store.cache.policy.limits.items()}
    memory.capacity[Tier.DEVICE] = headroom[Tier.DEVICE] + free
    memory.capacity[Tier.RAM] = headroom.get(Tier.RAM, 0) + ram_free
    memory.held = store.cache.used_bytes
    return store


def context(settings: Settings, store: ModelStore) -> AppContext:
    return AppContext.build(settings, store=store)


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image)


def sizes(tmp_path, model_store) -> tuple[int, int]:
    """Bytes of the tiny SD1.5 pipeline and of the tiny ESRGAN, as the cache counts them."""
    probe = store_with(make_settings(tmp_path), free=1 << 40)
    ckpt = probe.load("tiny-sd15")
    upscaler = probe.load("4x-tiny", model_type=ModelType.UPSCALER)
    return sum(ckpt.storages().values()), sum(upscaler.storages().values())


@pytest.fixture
def data(tmp_path, model_store):
    install_models(model_store, tmp_path, ["tiny-sd15", "tiny-sd15-b"])
    save_rrdbnet(tmp_path / "models" / "ESRGAN" / "4x-tiny.safetensors", scale=4, seed=1)
    return tmp_path


def test_every_kind_is_recorded_with_its_architecture_and_size(data):
    save_kohya_lora(data / "models" / "Lora" / "ink-sd1.safetensors")
    save_kohya_lora(data / "models" / "Lora" / "sub" / "ink-xl.safetensors", context_width=2048, sdxl=True)
    save_embedding(data / "embeddings" / "bad-hands.safetensors")
    save_embedding(data / "embeddings" / "xl-style.safetensors", sdxl=True)
    save_vae_file(data / "models" / "VAE" / "tiny-vae.safetensors")
    save_vae_folder(data / "models" / "VAE" / "tiny-vae-folder")
    (data / "models" / "Lora" / "notes.safetensors").write_bytes(b"not safetensors")
    store = ModelStore(make_settings(data))
    by_type = {t: {r.name: r for r in store.records(t)} for t in ModelType}
    assert set(by_type[ModelType.LORA]) == {"ink-sd1", "ink-xl", "notes"}
    assert by_type[ModelType.LORA]["ink-sd1"].architecture is Architecture.SD1
    assert by_type[ModelType.LORA]["ink-xl"].architecture is Architecture.SDXL
    assert "not a safetensors file" in by_type[ModelType.LORA]["notes"].problem  # listed with why, never a crash
    assert by_type[ModelType.EMBEDDING]["bad-hands"].architecture is Architecture.SD1
    assert by_type[ModelType.EMBEDDING]["xl-style"].architecture is Architecture.SDXL
    assert set(by_type[ModelType.VAE]) == {"tiny-vae", "tiny-vae-folder"}
    assert set(by_type[ModelType.UPSCALER]) == {"4x-tiny"}
    assert {"tiny-sd15", "tiny-sd15-b"} <= set(by_type[ModelType.CHECKPOINT])
    lora = by_type[ModelType.LORA]["ink-sd1"]
    assert lora.size_bytes == (data / "models" / "Lora" / "ink-sd1.safetensors").stat().st_size
    assert lora.sha256 is None  # hashes are lazy...
    hashed = store.hashed(lora)  # ...and cached once computed (A1111's addnet hash for LoRAs)
    assert len(hashed.sha256) == 64 and len(hashed.addnet_hash) == 64 and hashed.addnet_hash != hashed.sha256
    assert store.find(hashed.addnet_hash[:12], ModelType.LORA).name == "ink-sd1"
    with pytest.raises(ModelNotFoundError, match="did you mean 'ink-sd1'"):
        store.find("ink-sd", ModelType.LORA)


def test_extra_folders_from_flags_are_scanned(data, tmp_path_factory):
    extra = tmp_path_factory.mktemp("extra-loras")
    save_kohya_lora(extra / "far-away.safetensors")
    store = ModelStore(make_settings(data, lora_dirs=(extra,)))
    assert [r.name for r in store.records(ModelType.LORA)] == ["far-away"]


def test_a_checkpoint_and_an_upscaler_share_one_byte_budget(data, model_store):
    ckpt_bytes, upscaler_bytes = sizes(data, model_store)
    settings = make_settings(data, upscale_tile=16, upscale_tile_overlap=4)
    store = store_with(settings, free=ckpt_bytes + upscaler_bytes // 2)  # room for the checkpoint, not both
    ctx = context(settings, store)
    ctx.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sd15"))
    ckpt_key = store.find("tiny-sd15").ref.key
    upscaler_key = store.find("4x-tiny", ModelType.UPSCALER).ref.key
    assert store.cache.keys() == [ckpt_key]
    ctx.upscalers.upscale(Image.new("RGB", (8, 8), "gray"), 4, "4x-tiny")  # the idle checkpoint makes room
    assert store.cache.keys() == [upscaler_key]
    with store.use("tiny-sd15"):  # loading over budget while the upscaler is idle evicts it...
        assert store.cache.keys() == [ckpt_key]
        ctx.upscalers.upscale(Image.new("RGB", (8, 8), "gray"), 4, "4x-tiny")  # ...but never one in use
        assert set(store.cache.keys()) == {ckpt_key, upscaler_key}
    assert {e.name: e.type for e in store.memory()} == {"tiny-sd15": ModelType.CHECKPOINT,
                                                        "4x-tiny": ModelType.UPSCALER}


def test_the_budget_follows_free_memory_when_a_model_is_loaded(data, model_store):
    ckpt_bytes, _ = sizes(data, model_store)
    store = store_with(make_settings(data), free=3 * ckpt_bytes)
    store.load("tiny-sd15")
    store.load("tiny-sd15-b")
    assert len(store.cache.keys()) == 2  # plenty free: both stay
    store.cache.policy.probe.capacity[Tier.DEVICE] -= 2 * ckpt_bytes  # another program took the memory
    store.unload(store.find("tiny-sd15-b").ref.key)
    store.load("tiny-sd15-b")  # now only one fits: the idle one goes
    assert store.cache.keys() == [store.find("tiny-sd15-b").ref.key]


def test_a_parked_model_comes_back_without_reading_the_disk(data, model_store):
    ckpt_bytes, _ = sizes(data, model_store)
    settings = make_settings(data)
    store = store_with(settings, free=ckpt_bytes + ckpt_bytes // 2, two_tier=True)  # one on the device
    ctx = context(settings, store)
    first = ctx.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sd15"))
    pipe = store.loaded("tiny-sd15").pipeline
    ctx.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sd15-b"))
    tiers = {e.name: e.tier for e in store.memory()}
    assert tiers == {"tiny-sd15": Tier.RAM, "tiny-sd15-b": Tier.DEVICE}  # parked, not dropped
    shutil.rmtree(settings.checkpoint_dirs[0] / "tiny-sd15")  # only memory can serve it now
    again = ctx.engine.generate(Txt2ImgRequest(**SMALL, model="tiny-sd15"))
    assert store.loaded("tiny-sd15").pipeline is pipe
    assert {e.name: e.tier for e in store.memory()} == {"tiny-sd15": Tier.DEVICE, "tiny-sd15-b": Tier.RAM}
    assert np.array_equal(pixels(first), pixels(again))


def test_parked_models_are_dropped_when_ram_is_short(data, model_store):
    ckpt_bytes, _ = sizes(data, model_store)
    store = store_with(make_settings(data), free=ckpt_bytes + ckpt_bytes // 2, two_tier=True,
                       ram_free=ckpt_bytes // 2)
    store.load("tiny-sd15")
    store.load("tiny-sd15-b")
    assert [e.name for e in store.memory()] == ["tiny-sd15-b"]


def test_a_lora_used_twice_is_read_from_disk_once(data):
    path = save_kohya_lora(data / "models" / "Lora" / "ink.safetensors")
    store = ModelStore(make_settings(data))
    with store.use("ink", model_type=ModelType.LORA) as first:
        tensors = first.model
        assert any(k.endswith("lora_down.weight") for k in tensors)
    path.unlink()  # a second read would fail now
    with store.use("ink", model_type=ModelType.LORA) as second:
        assert second.model is tensors
    entry = next(e for e in store.memory() if e.name == "ink")
    assert entry.type is ModelType.LORA and entry.size_bytes == sum(t.nbytes for t in tensors.values())


def test_embeddings_and_vaes_load_through_the_store(data):
    save_embedding(data / "embeddings" / "style.safetensors", vectors=3)
    save_vae_folder(data / "models" / "VAE" / "tiny-vae")
    store = ModelStore(make_settings(data))
    with store.use("style", model_type=ModelType.EMBEDDING) as embedding:
        assert embedding.model["emb_params"].shape == (3, 768)
    with store.use("tiny-vae", model_type=ModelType.VAE) as vae:
        assert type(vae.model).__name__ == "AutoencoderKL" and vae.model.config.latent_channels == 4
    assert {e.name for e in store.memory()} == {"style", "tiny-vae"}


def test_two_concurrent_downloads_of_one_file_fetch_it_once(tmp_path):
    repo = tmp_path / "repo"
    save_rrdbnet(repo / "4x-hub.safetensors", scale=4, seed=3)
    size = (repo / "4x-hub.safetensors").stat().st_size
    data = tmp_path / "data"
    with LocalHub() as hub:
        hub.add_repo("atelier-test/upscalers", repo)
        hub.throttle(size / 1.5)  # about 1.5 s, so the second request arrives while the first runs
        store = ModelStore(make_settings(data, hub_offline=False, hf_endpoint=hub.endpoint))
        results, errors, progress = [], [], [[], []]

        def fetch(index: int) -> None:
            try:
                results.append(store.download("atelier-test/upscalers", progress[index].append,
                                              filename="4x-hub.safetensors", model_type=ModelType.UPSCALER))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads) and errors == []
        gets = [r for r in hub.log_snapshot() if r[0] == "GET" and r[1].endswith("/4x-hub.safetensors")]
    assert len(gets) == 1
    assert len(results) == 2 and results[0].path == results[1].path == data / "models" / "ESRGAN" / "4x-hub.safetensors"
    assert all(p and p[-1].step == p[-1].total == size for p in progress)  # both callers saw the bytes
    assert [p.name for p in (data / "models" / "ESRGAN").iterdir()] == ["4x-hub.safetensors"]  # no .part left


def test_a_diffusers_vae_repo_installs_whole_and_loads(tmp_path):
    repo = save_vae_folder(tmp_path / "vae-repo")
    data = tmp_path / "data"
    with LocalHub() as hub:
        hub.add_repo("atelier-test/tiny-vae", repo)
        store = ModelStore(make_settings(data, hub_offline=False, hf_endpoint=hub.endpoint))
        updates = []
        record = store.download("atelier-test/tiny-vae", updates.append, model_type=ModelType.VAE)
    assert record.type is ModelType.VAE and record.name == "atelier-test/tiny-vae"
    assert updates and updates[-1].unit == "bytes" and updates[-1].step == updates[-1].total > 0
    with store.use(record, model_type=ModelType.VAE) as vae:  # offline now: from the HF cache
        assert type(vae.model).__name__ == "AutoencoderKL"
