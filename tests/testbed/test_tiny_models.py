"""Acceptance tests for the tiny-model test bed (tests/support/*).

Everything runs offline: sockets are blocked for the whole module, the HF cache check runs in a
subprocess with ``HF_HUB_OFFLINE=1`` and a fresh ``HF_HOME``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.support.hf_cache import git_blob_sha1, install_into_hf_cache, repo_cache_dir
from tests.support.ldm_export import export_sd15_single_file, export_sdxl_single_file, write_sidecar_config
from tests.support.tiny_models import (
    save_sd2_folder,
    save_sd15_folder,
    save_sdxl_folder,
    sd15_component_state,
    tokenizer_vocab,
    write_clip_tokenizer,
)

torch.set_num_threads(1)

PROMPT = "A photograph of the cat and dog, running in Zürich! 123"
REPO_ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Make any outgoing connection attempt fail loudly (proves the loaders stay offline)."""

    def refuse(self, address, *args, **kwargs):
        raise OSError(f"network access attempted in an offline test: {address!r}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield


@pytest.fixture(scope="session")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def sd15_dir(root) -> Path:
    return save_sd15_folder(root / "sd15", seed=0)


@pytest.fixture(scope="session")
def sd15_inpaint_dir(root) -> Path:
    return save_sd15_folder(root / "sd15_inpaint", seed=0, inpainting=True)


@pytest.fixture(scope="session")
def sd2_dir(root) -> Path:
    return save_sd2_folder(root / "sd2", seed=0)


@pytest.fixture(scope="session")
def sdxl_dir(root) -> Path:
    return save_sdxl_folder(root / "sdxl", seed=0)


@pytest.fixture(scope="session")
def sd15_file(root, sd15_dir) -> Path:
    return export_sd15_single_file(sd15_dir, root / "files" / "tiny-sd15.safetensors")


@pytest.fixture(scope="session")
def sd15_inpaint_file(root, sd15_inpaint_dir) -> Path:
    return export_sd15_single_file(sd15_inpaint_dir, root / "files" / "tiny-sd15-inpainting.safetensors")


@pytest.fixture(scope="session")
def sdxl_file(root, sdxl_dir) -> Path:
    return export_sdxl_single_file(sdxl_dir, root / "files" / "tiny-sdxl.safetensors")


_PIPELINES: dict[tuple[str, str], object] = {}


def _from_folder(cls, folder: Path):
    key = (cls.__name__, str(folder))
    if key not in _PIPELINES:
        pipe = cls.from_pretrained(str(folder), local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        _PIPELINES[key] = pipe
    return _PIPELINES[key]


# -------------------------------------------------------------------------------------- helpers
def _generate(pipe, seed: int, **kwargs) -> np.ndarray:
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(seed)
    out = pipe(PROMPT, num_inference_steps=2, height=64, width=64, generator=generator, output_type="np", **kwargs)
    return out.images[0]


def _inpaint_inputs() -> dict:
    from PIL import Image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 16:48] = 255
    return {"image": image, "mask_image": Image.fromarray(mask)}


def _realigned(pipe):
    """Move every parameter/buffer into fresh (64-byte aligned) memory; returns ``pipe``.

    Weights loaded from a safetensors file are mmapped at arbitrary offsets, and CPU BLAS kernels
    may sum in a different order for unaligned data (~1e-7 differences). Two loading paths with
    bit-identical weights therefore only give bit-identical images once both are realigned.
    """
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            for module in component.modules():
                for param in module._parameters.values():
                    if param is not None:
                        param.data = param.data.clone()
                for name, buf in module._buffers.items():
                    if buf is not None:
                        module._buffers[name] = buf.clone()
    return pipe


def _assert_same_output(folder_pipe, file_pipe, seed: int, **kwargs) -> None:
    _realigned(folder_pipe)
    _realigned(file_pipe)
    np.testing.assert_array_equal(_generate(folder_pipe, seed, **kwargs), _generate(file_pipe, seed, **kwargs))


def _assert_same_weights(expected, actual, names: list[str]) -> None:
    for name in names:
        want = getattr(expected, name).state_dict()
        got = getattr(actual, name).state_dict()
        assert want.keys() == got.keys(), (name, sorted(set(want) ^ set(got))[:5])
        for key, tensor in want.items():
            other = got[key]
            assert not other.is_meta, f"{name}.{key} was never loaded"
            assert other.dtype == tensor.dtype and other.shape == tensor.shape, f"{name}.{key}"
            assert torch.equal(other, tensor), f"{name}.{key} differs"


# ------------------------------------------------------------------------------------ tokenizer
def test_tokenizer_round_trip(tmp_path):
    from transformers import CLIPTokenizer

    directory = write_clip_tokenizer(tmp_path / "tok")
    assert sorted(p.name for p in directory.iterdir()) == [
        "merges.txt",
        "special_tokens_map.json",
        "tokenizer_config.json",
        "vocab.json",
    ]
    tok = CLIPTokenizer.from_pretrained(str(directory))
    vocab, _ = tokenizer_vocab()
    assert len(tok) == len(vocab) < 1000
    assert tok.model_max_length == 77
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    assert tok.bos_token == "<|startoftext|>"

    ids = tok(PROMPT, padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids
    assert len(ids) == 77
    assert ids[0] == tok.bos_token_id
    assert ids[-1] == tok.pad_token_id == tok.eos_token_id
    assert tok.unk_token_id not in ids[1 : ids.index(tok.eos_token_id)]  # byte fallback covers everything
    decoded = tok.decode(ids, skip_special_tokens=True)
    assert "".join(decoded.split()) == "".join(PROMPT.lower().split())
    # merges are applied: common words become single tokens
    assert tok.tokenize("the cat") == ["the</w>", "cat</w>"]
    # long prompts are truncated to 77 with the eos kept last
    long_ids = tok("word " * 200, padding="max_length", max_length=77, truncation=True).input_ids
    assert len(long_ids) == 77 and long_ids[-1] == tok.eos_token_id


# -------------------------------------------------------------------------------------- folders
def test_sd15_folder_layout(sd15_dir):
    index = json.loads((sd15_dir / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["safety_checker"] == [None, None] and index["feature_extractor"] == [None, None]
    assert index["requires_safety_checker"] is False
    sched = json.loads((sd15_dir / "scheduler" / "scheduler_config.json").read_text())
    assert sched["_class_name"] == "PNDMScheduler"
    assert (sched["beta_start"], sched["beta_end"], sched["beta_schedule"]) == (0.00085, 0.012, "scaled_linear")
    assert sched["skip_prk_steps"] is True and sched["steps_offset"] == 1
    for weights in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                    "text_encoder/model.safetensors"):
        assert (sd15_dir / weights).is_file()
    assert not list(sd15_dir.rglob("*.bin"))
    te = json.loads((sd15_dir / "text_encoder" / "config.json").read_text())
    vocab, _ = tokenizer_vocab()
    assert te["hidden_act"] == "quick_gelu" and te["hidden_size"] == 32 and te["vocab_size"] == 1000
    assert te["eos_token_id"] == vocab["<|endoftext|>"] and te["bos_token_id"] == vocab["<|startoftext|>"]
    unet = json.loads((sd15_dir / "unet" / "config.json").read_text())
    assert unet["use_linear_projection"] is False and unet["in_channels"] == 4


def test_build_is_deterministic_in_seed(root, sd15_dir):
    again = save_sd15_folder(root / "sd15_again", seed=0)
    other = save_sd15_folder(root / "sd15_seed1", seed=1)
    for component in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                      "text_encoder/model.safetensors"):
        a, b, c = (load_file(str(d / component)) for d in (sd15_dir, again, other))
        assert a.keys() == b.keys() == c.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), component
        assert not all(torch.equal(a[k], c[k]) for k in a), component
    state = sd15_component_state(sd15_dir)
    assert set(state) == {"unet", "vae", "text_encoder"}


@pytest.mark.parametrize("kind", ["sd15", "sd2", "sdxl"])
def test_folder_generates_reproducibly(kind, request):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    folder = request.getfixturevalue(f"{kind}_dir")
    cls = StableDiffusionXLPipeline if kind == "sdxl" else StableDiffusionPipeline
    pipe = _from_folder(cls, folder)
    a = _generate(pipe, seed=0)
    b = _generate(pipe, seed=0)
    c = _generate(pipe, seed=1)
    assert a.shape == (64, 64, 3) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    assert a.std() > 1e-3  # not a flat image

    if kind == "sd2":
        assert pipe.unet.config.use_linear_projection is True
        assert list(pipe.unet.config.attention_head_dim) == [2, 4]
        assert pipe.text_encoder.config.hidden_act == "gelu"
        assert pipe.scheduler.config.prediction_type == "epsilon"
    if kind == "sdxl":
        assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
        assert pipe.unet.config.addition_embed_type == "text_time"
        assert pipe.config.force_zeros_for_empty_prompt is True
        assert type(pipe.text_encoder_2).__name__ == "CLIPTextModelWithProjection"


def test_inpainting_folder_generates(sd15_inpaint_dir):
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    assert json.loads((sd15_inpaint_dir / "model_index.json").read_text())["_class_name"] == (
        "StableDiffusionInpaintPipeline"
    )
    pipe = _from_folder(StableDiffusionInpaintPipeline, sd15_inpaint_dir)
    assert pipe.unet.config.in_channels == 9
    a = _generate(pipe, seed=0, **_inpaint_inputs())
    b = _generate(pipe, seed=0, **_inpaint_inputs())
    assert a.shape == (64, 64, 3)
    np.testing.assert_array_equal(a, b)
    # the folder also loads through the text-to-image class (as the real inpainting repo does)
    assert StableDiffusionPipeline.from_pretrained(str(sd15_inpaint_dir)).unet.config.in_channels == 9


# ---------------------------------------------------------------------------------- single file
def test_sd15_single_file_layout(sd15_file):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    ckpt = load_file(str(sd15_file))
    prefixes = {"model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model."}
    assert all(any(k.startswith(p) for p in prefixes) for k in ckpt)
    assert all(any(k.startswith(p) for k in ckpt) for p in prefixes)
    assert infer_diffusers_model_type(ckpt) == "v1"
    # LDM VAE attention is 1x1 conv
    assert ckpt["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4
    assert ckpt["first_stage_model.decoder.mid.attn_1.proj_out.weight"].ndim == 4
    for key in (
        "model.diffusion_model.input_blocks.0.0.weight",
        "model.diffusion_model.input_blocks.3.0.op.weight",
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight",
        "model.diffusion_model.middle_block.1.proj_in.weight",
        "model.diffusion_model.output_blocks.2.2.conv.weight",  # upsampler after attention
        "model.diffusion_model.output_blocks.2.1.proj_out.weight",
        "model.diffusion_model.out.2.weight",
        "first_stage_model.decoder.up.1.upsample.conv.weight",
        "first_stage_model.encoder.down.2.block.0.nin_shortcut.weight",
        "cond_stage_model.transformer.text_model.embeddings.position_ids",
    ):
        assert key in ckpt, key


def test_sd15_single_file_matches_folder(sd15_dir, sd15_file):
    from diffusers import StableDiffusionPipeline

    folder_pipe = _from_folder(StableDiffusionPipeline, sd15_dir)
    file_pipe = StableDiffusionPipeline.from_single_file(
        str(sd15_file), config=str(sd15_dir), local_files_only=True
    )
    _assert_same_weights(folder_pipe, file_pipe, ["unet", "vae", "text_encoder"])
    assert file_pipe.vae.config.scaling_factor == folder_pipe.vae.config.scaling_factor
    _assert_same_output(folder_pipe, file_pipe, seed=3)


def test_sd15_inpainting_single_file_matches_folder(sd15_inpaint_dir, sd15_inpaint_file):
    from diffusers import StableDiffusionInpaintPipeline
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    assert infer_diffusers_model_type(load_file(str(sd15_inpaint_file))) == "inpainting"
    folder_pipe = _from_folder(StableDiffusionInpaintPipeline, sd15_inpaint_dir)
    file_pipe = StableDiffusionInpaintPipeline.from_single_file(
        str(sd15_inpaint_file), config=str(sd15_inpaint_dir), local_files_only=True
    )
    _assert_same_weights(folder_pipe, file_pipe, ["unet", "vae", "text_encoder"])
    _assert_same_output(folder_pipe, file_pipe, seed=5, **_inpaint_inputs())


def test_sdxl_single_file_matches_folder(sdxl_dir, sdxl_file):
    from diffusers import StableDiffusionXLPipeline
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    ckpt = load_file(str(sdxl_file))
    assert infer_diffusers_model_type(ckpt) == "xl_base"
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in ckpt
    assert ckpt["conditioner.embedders.1.model.text_projection"].shape == (64, 32)  # [width, proj] like OpenCLIP
    assert "model.diffusion_model.label_emb.0.0.weight" in ckpt

    folder_pipe = _from_folder(StableDiffusionXLPipeline, sdxl_dir)
    file_pipe = StableDiffusionXLPipeline.from_single_file(
        str(sdxl_file), config=str(sdxl_dir), local_files_only=True
    )
    _assert_same_weights(folder_pipe, file_pipe, ["unet", "vae", "text_encoder", "text_encoder_2"])
    _assert_same_output(folder_pipe, file_pipe, seed=7)


@pytest.mark.parametrize("kind", ["sd15", "sdxl"])
def test_sidecar_config_loads_single_file(kind, root, request):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    folder = request.getfixturevalue(f"{kind}_dir")
    file = request.getfixturevalue(f"{kind}_file")
    sidecar = write_sidecar_config(folder, root / f"{kind}_sidecar")
    files = {p.relative_to(sidecar).as_posix() for p in sidecar.rglob("*") if p.is_file()}
    assert "model_index.json" in files and "unet/config.json" in files and "tokenizer/vocab.json" in files
    assert "scheduler/scheduler_config.json" in files
    assert not [f for f in files if f.endswith((".safetensors", ".bin"))]

    cls = StableDiffusionXLPipeline if kind == "sdxl" else StableDiffusionPipeline
    names = ["unet", "vae", "text_encoder"] + (["text_encoder_2"] if kind == "sdxl" else [])
    pipe = cls.from_single_file(str(file), config=str(sidecar), local_files_only=True)
    _assert_same_weights(_from_folder(cls, folder), pipe, names)


def test_single_file_without_config_uses_hf_cache(root, sd15_dir, sd15_file):
    """Config-less loading resolves the default SD1 repo id; a sidecar in the HF cache satisfies it."""
    from diffusers import StableDiffusionPipeline

    hf_home = root / "hf_home_default_config"
    install_into_hf_cache(
        write_sidecar_config(sd15_dir, root / "sd15_sidecar_for_cache"),
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        hf_home,
    )
    pipe = StableDiffusionPipeline.from_single_file(
        str(sd15_file), cache_dir=str(hf_home / "hub"), local_files_only=True
    )
    _assert_same_weights(_from_folder(StableDiffusionPipeline, sd15_dir), pipe, ["unet", "vae", "text_encoder"])


# ------------------------------------------------------------------------------------- HF cache
def test_git_blob_sha1_matches_git():
    assert git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_sha1(b"hello world\n") == "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"


def test_hf_cache_layout_and_in_process_loading(root, sd15_dir):
    import huggingface_hub
    from diffusers import StableDiffusionPipeline

    hf_home = root / "hf_home_layout"
    snapshot = install_into_hf_cache(sd15_dir, "atelier-test/tiny-sd15", hf_home)
    repo_dir = repo_cache_dir(hf_home, "atelier-test/tiny-sd15")
    commit = (repo_dir / "refs" / "main").read_text()
    assert len(commit) == 40 and snapshot == repo_dir / "snapshots" / commit
    # deterministic and idempotent
    assert install_into_hf_cache(sd15_dir, "atelier-test/tiny-sd15", hf_home) == snapshot

    weights = snapshot / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.is_symlink()
    assert os.readlink(weights) == f"../../../blobs/{hashlib.sha256(weights.read_bytes()).hexdigest()}"
    index = snapshot / "model_index.json"
    assert os.readlink(index) == f"../../blobs/{git_blob_sha1(index.read_bytes())}"

    cache_dir = str(hf_home / "hub")
    assert huggingface_hub.snapshot_download(
        "atelier-test/tiny-sd15", cache_dir=cache_dir, local_files_only=True
    ) == str(snapshot)
    info = huggingface_hub.scan_cache_dir(cache_dir)
    assert not info.warnings
    (repo,) = [r for r in info.repos if r.repo_id == "atelier-test/tiny-sd15"]
    (revision,) = repo.revisions
    assert revision.commit_hash == commit and revision.refs == frozenset({"main"})
    assert revision.nb_files == len([p for p in sd15_dir.rglob("*") if p.is_file()])

    pipe = StableDiffusionPipeline.from_pretrained(
        "atelier-test/tiny-sd15", cache_dir=cache_dir, local_files_only=True
    )
    _assert_same_weights(_from_folder(StableDiffusionPipeline, sd15_dir), pipe, ["unet", "vae", "text_encoder"])

    custom = install_into_hf_cache(sd15_dir, "atelier-test/pinned", hf_home, commit="a" * 40)
    assert custom.name == "a" * 40


def test_hf_cache_offline_env_subprocess(root, sd15_dir):
    hf_home = root / "hf_home_env"
    snapshot = install_into_hf_cache(sd15_dir, "atelier-test/tiny-sd15", hf_home)
    code = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network access attempted")
        socket.socket.connect = refuse
        import torch
        torch.set_num_threads(1)
        import huggingface_hub
        from diffusers import StableDiffusionPipeline
        pipe = StableDiffusionPipeline.from_pretrained("atelier-test/tiny-sd15")
        print("UNET", pipe.unet.config.block_out_channels)
        print("SNAPSHOT", huggingface_hub.snapshot_download("atelier-test/tiny-sd15"))
        print("REPOS", sorted(r.repo_id for r in huggingface_hub.scan_cache_dir().repos))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=str(root), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["UNET"] == "[32, 64]"
    assert lines["SNAPSHOT"] == str(snapshot)
    assert lines["REPOS"] == "['atelier-test/tiny-sd15']"
