"""LoRAs applied for one job on the tiny models, through the real model store and diffusers' LoRA API.

The LoRA files are built for the tiny models from their own module names and shapes (kohya and
diffusers/peft layouts). Every check runs the real pipeline or its real modules on the CPU.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.errors import UnsupportedModelError, ValidationError
from pipelines.models.architecture import Architecture
from pipelines.models.kinds import ModelType
from pipelines.models.store import ModelStore
from pipelines.networks import AppliedLoras, LoraTag, applied_loras, extract_loras
from pipelines.networks.lora import ADAPTER_PREFIX
from pipelines.prompts.encode import PromptEncoder, encode_prompt_pair
from tests.support.apps import install_models, make_settings
from tests.support.tiny_loras import lora_factors, save_kohya_lora_for, save_lycoris_file, save_peft_lora_for
from tests.support.tiny_networks import save_kohya_lora

SD1, SDXL = "tiny-sd15", "tiny-sdxl"
PROMPT = "a lighthouse at night"


def build_lora_folder(data: Path, model_store: Path) -> None:
    lora = data / "models" / "Lora"
    save_kohya_lora_for(model_store / SD1, lora / "ink-kohya.safetensors", conv=True, seed=0)  # LoCon, alpha/rank 0.5
    save_peft_lora_for(model_store / SD1, lora / "ink-peft.safetensors", seed=1)
    save_kohya_lora_for(model_store / SDXL, lora / "xl-kohya.safetensors", seed=2)
    save_peft_lora_for(model_store / SDXL, lora / "xl-peft.safetensors", seed=3)
    save_kohya_lora(lora / "real-sd1.safetensors")  # 768-wide: a real SD1 LoRA's shapes (arch SD1)
    save_lycoris_file(data / "models" / "LyCORIS" / "ink-loha.safetensors", kind="loha")
    save_lycoris_file(data / "models" / "LyCORIS" / "ink-lokr.safetensors", kind="lokr")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, model_store) -> Path:
    data = tmp_path_factory.mktemp("lora-data")
    install_models(model_store, data, [SD1, SDXL])
    build_lora_folder(data, model_store)
    return data


@pytest.fixture(scope="module")
def store(data_dir) -> ModelStore:
    return ModelStore(make_settings(data_dir))


def image(pipe, prompt: str = PROMPT, negative_prompt: str = "") -> np.ndarray:
    """A 2-step 64x64 job on a CPU generator."""
    pipe.set_progress_bar_config(disable=True)
    return pipe(prompt=prompt, negative_prompt=negative_prompt, num_inference_steps=2, width=64, height=64,
                generator=torch.Generator("cpu").manual_seed(3), output_type="np").images


def text_embeds(pipe, prompt: str = PROMPT) -> torch.Tensor:
    """The project's own conditioning (A1111 prompt language) of ``prompt``."""
    positive, _ = encode_prompt_pair(prompt, "", PromptEncoder.from_pipeline(pipe))
    return positive.embeds


def unet_out(pipe, embeds: torch.Tensor) -> torch.Tensor:
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return pipe.unet(latents, torch.tensor(500), encoder_hidden_states=embeds).sample


def peft_layers(pipe) -> int:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return sum(isinstance(m, BaseTunerLayer) for part in (pipe.unet, pipe.text_encoder) for m in part.modules())


def apply(pipe, store: ModelStore, *tags: LoraTag, model: str = SD1):
    arch = Architecture.SDXL if model == SDXL else Architecture.SD1
    return applied_loras(pipe, store, list(tags), arch, model_name=model)


@pytest.mark.parametrize(("model", "name"), [(SD1, "ink-kohya"), (SD1, "ink-peft"), (SDXL, "xl-kohya"),
                                             (SDXL, "xl-peft")])
def test_lora_changes_the_image_and_leaves_no_trace(store, model, name):
    with store.use(model) as loaded:
        pipe = loaded.pipeline
        weights = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
        before = image(pipe)
        with apply(pipe, store, LoraTag(name), model=model) as applied:
            during = image(pipe)
            assert peft_layers(pipe) > 0
        after = image(pipe)
        assert not np.array_equal(during, before)
        assert np.array_equal(after, before)  # bit-identical: the next job without the LoRA is untouched
        assert peft_layers(pipe) == 0 and pipe.get_list_adapters() == {}  # the original modules, not disabled layers
        assert all(torch.equal(weights[k], v) for k, v in pipe.unet.state_dict().items())
        components = {"unet", "text_encoder"} | ({"text_encoder_2"} if model == SDXL else set())
        assert set(applied.loras[0].components) == components


def test_weights_are_split_between_text_encoder_and_unet(store, data_dir):
    """Each patched layer computes W x + weight * (alpha / rank) * up(down(x)), with its part's weight."""
    path = data_dir / "models" / "Lora" / "ink-kohya.safetensors"
    with store.use(SD1) as loaded:
        pipe = loaded.pipeline
        layers = {
            "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k":
                ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 0.7),
            "lora_te_text_model_encoder_layers_3_mlp_fc1": ("text_encoder", "encoder.layers.3.mlp.fc1", 1.5),
        }
        base = {key: getattr(pipe, part).get_submodule(path_).weight.detach().clone()
                for key, (part, path_, _) in layers.items()}
        with apply(pipe, store, LoraTag("ink-kohya", te_weight=1.5, unet_weight=0.7)):
            for key, (part, module_path, weight) in layers.items():
                layer = getattr(pipe, part).get_submodule(module_path)
                down, up, scale = lora_factors(path, key)
                assert scale == 0.5  # alpha 2, rank 4: the alpha is honoured
                x = torch.randn(3, down.shape[1], generator=torch.Generator().manual_seed(1))
                bias = layer.base_layer.bias if layer.base_layer.bias is not None else 0
                expected = x @ (base[key] + weight * scale * up @ down).T + bias
                torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_text_encoder_weight_and_unet_weight_act_apart(store):
    with store.use(SD1) as loaded:
        pipe = loaded.pipeline
        embeds = text_embeds(pipe)
        base_unet = unet_out(pipe, embeds)
        with apply(pipe, store, LoraTag("ink-kohya", te_weight=1.0, unet_weight=0.0)):
            te_only = text_embeds(pipe)
            unet_same = unet_out(pipe, embeds)
        with apply(pipe, store, LoraTag("ink-kohya", te_weight=0.0, unet_weight=1.0)):
            te_same = text_embeds(pipe)
            unet_changed = unet_out(pipe, embeds)
        assert not torch.equal(te_only, embeds)  # the conditioning reads the LoRA'd text encoder
        assert torch.equal(unet_same, base_unet)
        assert torch.equal(te_same, embeds)
        assert not torch.equal(unet_changed, base_unet)
        assert torch.equal(text_embeds(pipe), embeds) and torch.equal(unet_out(pipe, embeds), base_unet)


def test_two_loras_stack(store):
    with store.use(SD1) as loaded:
        pipe = loaded.pipeline
        base = image(pipe)
        outs = {}
        for names in (["ink-kohya"], ["ink-peft"], ["ink-kohya", "ink-peft"]):
            with apply(pipe, store, *[LoraTag(n, 0.8, 0.8) for n in names]) as applied:
                outs[tuple(names)] = image(pipe)
                assert [a.name for a in applied.loras] == names
                assert len({a.adapter for a in applied.loras}) == len(names)
        both = outs[("ink-kohya", "ink-peft")]
        assert not np.array_equal(both, outs[("ink-kohya",)]) and not np.array_equal(both, outs[("ink-peft",)])
        assert np.array_equal(image(pipe), base)


def test_same_lora_twice_is_one_lora_at_the_summed_weight(store):
    tags = extract_loras(f"{PROMPT} <lora:ink-kohya:0.25>", "<lora:ink-kohya:0.25:0.75>")
    assert tags.tags == (LoraTag("ink-kohya", 0.5, 1.0),)
    with store.use(SD1) as loaded:
        pipe = loaded.pipeline
        with apply(pipe, store, *tags.tags) as applied:
            twice = image(pipe, tags.prompt.strip())
            assert len(applied.loras) == 1
        with apply(pipe, store, LoraTag("ink-kohya", 0.5, 1.0)):
            once = image(pipe)
        assert np.array_equal(twice, once)


def test_infotext_names_each_lora_with_its_addnet_hash(store):
    with store.use(SD1) as loaded, apply(loaded.pipeline, store, LoraTag("ink-kohya"), LoraTag("ink-peft")) as used:
        infotext = used.infotext()
    hashes = {r.name: store.hashed(r).addnet_hash[:12] for r in store.records(ModelType.LORA)}
    assert infotext == {"Lora hashes": f"ink-kohya: {hashes['ink-kohya']}, ink-peft: {hashes['ink-peft']}"}
    assert AppliedLoras().infotext() == {}


def test_no_tags_touch_nothing(store):
    with store.use(SD1) as loaded, apply(loaded.pipeline, store) as used:
        assert not used and used.infotext() == {} and peft_layers(loaded.pipeline) == 0


@pytest.mark.parametrize(("model", "name", "lora_arch", "model_arch"),
                         [(SD1, "xl-kohya", "SDXL", "SD 1.x"), (SDXL, "real-sd1", "SD 1.x", "SDXL")])
def test_lora_of_another_architecture_is_a_prompt_error(store, model, name, lora_arch, model_arch):
    with store.use(model) as loaded:
        pipe = loaded.pipeline
        with pytest.raises(ValidationError) as info, apply(pipe, store, LoraTag(name), model=model):
            pass
        assert info.value.field == "prompt"
        assert f"made for {lora_arch}" in info.value.message and f"{model!r} is {model_arch}" in info.value.message
        assert peft_layers(pipe) == 0


def test_unknown_name_lists_close_names(store):
    with store.use(SD1) as loaded:
        with pytest.raises(ValidationError) as info, apply(loaded.pipeline, store, LoraTag("ink-kohyo")):
            pass
    assert info.value.field == "prompt"
    assert "no LoRA named 'ink-kohyo'" in info.value.message and "'ink-kohya'" in info.value.message


@pytest.mark.parametrize(("name", "kind"), [("ink-loha", "LoHa"), ("ink-lokr", "LoKr")])
def test_lycoris_kinds_are_refused_by_name(store, name, kind):
    with store.use(SD1) as loaded:
        with pytest.raises(UnsupportedModelError, match=rf"{kind} \(LyCORIS\) is not supported"):
            with apply(loaded.pipeline, store, LoraTag(name)):
                pass
        assert peft_layers(loaded.pipeline) == 0


def test_lora_that_does_not_fit_is_refused_and_cleaned_up(store):
    """The tiny SD1 LoRA (architecture unknown: 32 wide) on the tiny SDXL: shapes differ."""
    with store.use(SDXL) as loaded:
        pipe = loaded.pipeline
        before = image(pipe)
        mismatch = r"ink-kohya> does not fit 'tiny-sdxl': size mismatch for .*to_k.* \(and \d+ more\)"
        with pytest.raises(ValidationError, match=mismatch):
            with apply(pipe, store, LoraTag("xl-peft"), LoraTag("ink-kohya"), model=SDXL):
                pass
        assert peft_layers(pipe) == 0 and np.array_equal(image(pipe), before)


@pytest.mark.filterwarnings("ignore:Already found a `peft_config`")  # the test's own second adapter
def test_adapters_of_others_stay(store):
    """Adapters this module did not add survive the job, active again; a stale one of ours is removed."""
    with store.use(SD1) as loaded, store.use("ink-peft", model_type=ModelType.LORA) as other:
        pipe = loaded.pipeline
        pipe.load_lora_weights(other.model, adapter_name="someone_else")
        pipe.load_lora_weights(other.model, adapter_name=f"{ADAPTER_PREFIX}9")  # left by a crashed job
        pipe.set_adapters(["someone_else"])
        theirs = image(pipe)
        with apply(pipe, store, LoraTag("ink-kohya")):
            assert pipe.get_active_adapters() == [f"{ADAPTER_PREFIX}0"]
        assert pipe.get_list_adapters() == {"unet": ["someone_else"], "text_encoder": ["someone_else"]}
        assert pipe.get_active_adapters() == ["someone_else"]
        assert np.array_equal(image(pipe), theirs)
        pipe.unload_lora_weights()


def test_file_is_read_once_and_timings(data_dir, capsys):
    """A fresh store: the first use reads the file, a second job uses the cached tensors (the file is gone)."""
    store = ModelStore(make_settings(data_dir))
    lora_file = data_dir / "models" / "Lora" / "ink-once.safetensors"
    save_kohya_lora_for(data_dir / "models" / "Stable-diffusion" / SD1, lora_file, seed=9)
    store.refresh()

    def job(pipe, *tags: LoraTag) -> tuple[np.ndarray, float, AppliedLoras]:
        started = time.perf_counter()
        with apply(pipe, store, *tags) as applied:
            out = image(pipe)
        return out, time.perf_counter() - started, applied

    with store.use(SD1) as loaded:
        pipe = loaded.pipeline
        image(pipe)  # warm-up
        plain = min(job(pipe)[1] for _ in range(3))
        first, first_s, first_applied = job(pipe, LoraTag("ink-once"))
        lora_file.unlink()
        second, cached_s, cached_applied = job(pipe, LoraTag("ink-once"))
        cached_s = min(cached_s, *(job(pipe, LoraTag("ink-once"))[1] for _ in range(2)))
    assert np.array_equal(first, second)
    with capsys.disabled():
        print(f"\n[lora timing] 2-step 64x64 tiny SD1 job: no LoRA {plain * 1000:.0f} ms; "
              f"with a LoRA, first use {first_s * 1000:.0f} ms (+{(first_s - plain) * 1000:.0f} ms, of which applying "
              f"{first_applied.load_seconds * 1000:.0f} ms); cached {cached_s * 1000:.0f} ms "
              f"(+{(cached_s - plain) * 1000:.0f} ms, applying {cached_applied.load_seconds * 1000:.0f} ms)")
