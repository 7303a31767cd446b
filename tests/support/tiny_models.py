"""Tiny random-weight Stable Diffusion models built with the real diffusers/transformers classes.

Everything here runs offline: the tokenizer vocabulary is generated in code and every weight is
drawn from ``torch``'s global RNG after ``torch.manual_seed(seed)``, so the same seed always gives
bit-identical folders.

Shapes follow the style of diffusers' own pipeline tests (32/64-channel UNet and VAE, 32-wide
5-layer CLIP text encoders), so a 64x64 generation takes a fraction of a second on one CPU thread.

Public helpers:

* :func:`write_clip_tokenizer` - a legacy-format CLIP tokenizer folder (vocab.json, merges.txt, ...).
* :func:`save_sd15_folder` - diffusers-layout SD1.x folder (optionally the 9-channel inpainting UNet).
* :func:`save_sd2_folder` - SD2-shaped folder (linear projections, list ``attention_head_dim``, gelu CLIP).
* :func:`save_sdxl_folder` - SDXL-shaped folder (two text encoders, ``text_time`` added conditioning).
* :func:`sd15_component_state` - every component's state dict, for tensor-equality checks.
* :func:`tiny_vae`, :func:`sd1_scheduler` - parts other tiny pipelines reuse (tests/support/tiny_seed_models.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

__all__ = [
    "TOKENIZER_MAX_LENGTH",
    "tokenizer_vocab",
    "write_clip_tokenizer",
    "save_sd15_folder",
    "save_sd2_folder",
    "save_sdxl_folder",
    "sd15_component_state",
    "sd1_scheduler",
    "tiny_vae",
]

TOKENIZER_MAX_LENGTH = 77
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
TEXT_ENCODER_VOCAB_SIZE = 1000

# Common English letter pairs / short words, merged in this order (BPE priority = line order).
_MERGES: tuple[tuple[str, str], ...] = (
    ("t", "h"),
    ("th", "e</w>"),
    ("i", "n"),
    ("a", "n"),
    ("e", "r"),
    ("o", "n"),
    ("r", "e"),
    ("e", "n"),
    ("a", "t"),
    ("o", "r"),
    ("s", "t"),
    ("e", "s"),
    ("a", "r"),
    ("i", "t"),
    ("in", "g</w>"),
    ("an", "d</w>"),
    ("o", "f</w>"),
    ("a", "t</w>"),
    ("c", "at</w>"),
    ("d", "o"),
    ("do", "g</w>"),
)


def _bytes_to_unicode() -> dict[int, str]:
    """Byte value -> printable unicode character, the table GPT-2/CLIP byte-level BPE uses.

    Printable Latin-1 bytes map to themselves; the remaining 68 bytes (controls, space, ...) are
    mapped, in byte order, to code points 256, 257, ...
    """
    printable = set(range(ord("!"), ord("~") + 1))
    printable |= set(range(ord("\xa1"), ord("\xac") + 1))
    printable |= set(range(ord("\xae"), ord("\xff") + 1))
    table: dict[int, str] = {}
    extra = 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def tokenizer_vocab() -> tuple[dict[str, int], list[str]]:
    """Return ``(vocab, merges)`` of the tiny CLIP tokenizer, ordered like CLIP's real vocabulary.

    Order: 256 byte characters, the same 256 with ``</w>``, one token per merge, then
    ``<|startoftext|>`` and ``<|endoftext|>`` (so the special tokens have the two highest ids).
    """
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[str] = []
    for left, right in _MERGES:
        merged = left + right
        # A merge is only valid when both halves are already tokens.
        assert left in tokens and right in tokens, (left, right)
        merges.append(f"{left} {right}")
        if merged not in tokens:
            tokens.append(merged)
    tokens += [BOS_TOKEN, EOS_TOKEN]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    assert len(vocab) == len(tokens) < TEXT_ENCODER_VOCAB_SIZE
    return vocab, merges


def _special_token_ids() -> dict[str, int]:
    vocab, _ = tokenizer_vocab()
    eos = vocab[EOS_TOKEN]
    return {"bos_token_id": vocab[BOS_TOKEN], "eos_token_id": eos, "pad_token_id": eos}


def write_clip_tokenizer(directory: Path) -> Path:
    """Write a CLIP tokenizer in the legacy slow-tokenizer file layout and return ``directory``.

    Files: ``vocab.json``, ``merges.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``
    (the same set the SD1.5 repository ships). Loads with ``CLIPTokenizer.from_pretrained`` and
    tokenizes any text (unknown byte sequences fall back to single byte-level characters);
    ``model_max_length`` is 77 and padding uses ``<|endoftext|>``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = tokenizer_vocab()
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": EOS_TOKEN,
        "unk_token": EOS_TOKEN,
    }
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": TOKENIZER_MAX_LENGTH,
        "add_prefix_space": False,
        "do_lower_case": True,
        "errors": "replace",
        **special,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return directory


def _load_tokenizer(directory: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(directory)))


def _clip_text_config(
    *, hidden_size: int, hidden_act: str, projection_dim: int | None = None, num_hidden_layers: int = 5
):
    from transformers import CLIPTextConfig

    kwargs = dict(
        hidden_size=hidden_size,
        intermediate_size=37,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        layer_norm_eps=1e-5,
        vocab_size=TEXT_ENCODER_VOCAB_SIZE,
        max_position_embeddings=TOKENIZER_MAX_LENGTH,
        hidden_act=hidden_act,
        **_special_token_ids(),
    )
    if projection_dim is not None:
        kwargs["projection_dim"] = projection_dim
    return CLIPTextConfig(**kwargs)


def tiny_vae(*, scaling_factor: float = 0.18215):
    from diffusers import AutoencoderKL

    # Four levels like SD's VAE (8x downscale), so latents are 1/8 of the image and
    # a 256x256 image stays cheap; only the channel widths are tiny.
    return AutoencoderKL(
        block_out_channels=[32, 32, 64, 64],
        layers_per_block=1,
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        sample_size=256,
        scaling_factor=scaling_factor,
    )


def sd1_scheduler():
    from diffusers import PNDMScheduler

    return PNDMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )


def _write_pipeline(pipe, path: Path) -> Path:
    """Save with safetensors weights and put the hand-written legacy tokenizer files back."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(path), safe_serialization=True)
    for name in ("tokenizer", "tokenizer_2"):
        if (path / name).is_dir():
            shutil.rmtree(path / name)
            write_clip_tokenizer(path / name)
    return path


def _save_sd_folder(path: Path, *, seed: int, inpainting: bool, sd2: bool) -> Path:
    """Tiny SD1.x / SD2.x pipeline; SD2 differs structurally in linear projections,
    per-block head dims and an OpenCLIP-style ("gelu") text encoder."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=9 if inpainting else 4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4) if sd2 else 8,
        use_linear_projection=sd2,
    )
    torch.manual_seed(seed + 1)
    vae = tiny_vae()
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_clip_text_config(hidden_size=32, hidden_act="gelu" if sd2 else "quick_gelu"))
    tokenizer = _load_tokenizer(Path(path) / "tokenizer")
    cls = StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline
    pipe = cls(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sd1_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _write_pipeline(pipe, path)


def save_sd15_folder(path: Path, *, seed: int = 0, inpainting: bool = False) -> Path:
    """Save a tiny random SD1.x pipeline in diffusers folder layout and return ``path``.

    ``model_index.json`` names ``StableDiffusionPipeline`` (``StableDiffusionInpaintPipeline`` with
    ``inpainting=True``, whose UNet takes 9 input channels); safety checker and feature extractor are
    null and ``requires_safety_checker`` is false. Weights are safetensors, deterministic in ``seed``.
    Default output size is 256x256 (UNet sample_size 32 x VAE scale factor 8).
    """
    return _save_sd_folder(path, seed=seed, inpainting=inpainting, sd2=False)


def save_sd2_folder(path: Path, *, seed: int = 0) -> Path:
    """Save a tiny random SD2-shaped pipeline (diffusers folder only) and return ``path``.

    Structural SD2 traits: UNet ``use_linear_projection=True`` with a per-block list
    ``attention_head_dim``, an OpenCLIP-style text encoder (``hidden_act="gelu"``), and an
    epsilon-prediction PNDM scheduler like ``stable-diffusion-2-base``.
    """
    return _save_sd_folder(path, seed=seed, inpainting=False, sd2=True)


# SDXL: the two text encoders must differ in width, as they do for real (768 vs 1280), because
# diffusers' single-file loader tells them apart by the width of the position embedding.
SDXL_TEXT_ENCODER_HIDDEN = 32
SDXL_TEXT_ENCODER_2_HIDDEN = 64
SDXL_PROJECTION_DIM = 32
SDXL_ADDITION_TIME_EMBED_DIM = 8
# >= 10 layers so diffusers' key sniffing (``infer_diffusers_model_type``) sees resblocks.9 in the
# OpenCLIP tower and classifies an exported single file as "xl_base", like the real checkpoint.
SDXL_TEXT_ENCODER_2_LAYERS = 10


def _sdxl_unet(*, layers_per_block: int, time_ids: int, cross_attention_dim: int, **extra):
    """A tiny SDXL-shaped UNet: ``time_ids`` add-time ids (6 for the base, 5 for the refiner) of
    ``SDXL_ADDITION_TIME_EMBED_DIM`` each, plus the pooled projection."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=layers_per_block, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4), use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=SDXL_ADDITION_TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=time_ids * SDXL_ADDITION_TIME_EMBED_DIM + SDXL_PROJECTION_DIM,
        cross_attention_dim=cross_attention_dim, **extra,
    )


def _sdxl_text_encoder_2():
    """SDXL's second (OpenCLIP-G-like) encoder, tiny: the base's and the refiner's."""
    from transformers import CLIPTextModelWithProjection

    return CLIPTextModelWithProjection(_clip_text_config(
        hidden_size=SDXL_TEXT_ENCODER_2_HIDDEN, hidden_act="gelu", projection_dim=SDXL_PROJECTION_DIM,
        num_hidden_layers=SDXL_TEXT_ENCODER_2_LAYERS))


def _sdxl_scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        interpolation_type="linear", prediction_type="epsilon", steps_offset=1, timestep_spacing="leading",
        use_karras_sigmas=False,
    )


def save_sdxl_folder(path: Path, *, seed: int = 0) -> Path:
    """Save a tiny random ``StableDiffusionXLPipeline`` folder and return ``path``.

    text_encoder: ``CLIPTextModel`` (32 wide, 5 layers, quick_gelu); text_encoder_2:
    ``CLIPTextModelWithProjection`` (64 wide, 10 layers, gelu, projection_dim 32). The UNet
    cross-attends to their concatenated penultimate states (32 + 64 = 96) and uses
    ``addition_embed_type="text_time"`` with ``projection_class_embeddings_input_dim`` =
    6 * 8 + 32 = 80. EulerDiscreteScheduler, ``force_zeros_for_empty_prompt=True``, VAE scaling
    factor 0.13025. Default output 64x64. The encoders differ in width on purpose (as 768 vs 1280
    do for real): diffusers' single-file loader tells them apart by embedding width.
    """
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = _sdxl_unet(layers_per_block=2, transformer_layers_per_block=(1, 2), time_ids=6,
                      cross_attention_dim=SDXL_TEXT_ENCODER_HIDDEN + SDXL_TEXT_ENCODER_2_HIDDEN)
    torch.manual_seed(seed + 1)
    vae = tiny_vae(scaling_factor=0.13025)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        _clip_text_config(
            hidden_size=SDXL_TEXT_ENCODER_HIDDEN,
            hidden_act="quick_gelu",
            projection_dim=SDXL_TEXT_ENCODER_HIDDEN,
        )
    )
    torch.manual_seed(seed + 3)
    text_encoder_2 = _sdxl_text_encoder_2()
    scheduler = _sdxl_scheduler()
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=_load_tokenizer(Path(path) / "tokenizer"),
        tokenizer_2=_load_tokenizer(Path(path) / "tokenizer_2"),
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
    )
    return _write_pipeline(pipe, path)


def save_sdxl_refiner_folder(path: Path, *, seed: int = 0) -> Path:
    """Save a tiny random SDXL *refiner* (``StableDiffusionXLImg2ImgPipeline``) folder and return ``path``.

    As the real refiner: no first text encoder (``text_encoder``/``tokenizer`` null in
    ``model_index.json``), ``requires_aesthetics_score=True`` and ``force_zeros_for_empty_prompt=False``;
    the UNet cross-attends to OpenCLIP-G's 64-wide states alone and its time ids are 5 (original size,
    crop, aesthetic score): ``projection_class_embeddings_input_dim`` = 5 * 8 + 32 = 72. The VAE and
    text_encoder_2 are those :func:`save_sdxl_folder` builds with the same ``seed`` (one latent space);
    the UNet differs, so refining changes the image.
    """
    from diffusers import StableDiffusionXLImg2ImgPipeline

    torch.manual_seed(seed + 1)
    vae = tiny_vae(scaling_factor=0.13025)
    torch.manual_seed(seed + 3)
    text_encoder_2 = _sdxl_text_encoder_2()
    torch.manual_seed(seed + 4)
    unet = _sdxl_unet(layers_per_block=1, time_ids=5, cross_attention_dim=SDXL_TEXT_ENCODER_2_HIDDEN)
    scheduler = _sdxl_scheduler()
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=vae,
        text_encoder=None,
        text_encoder_2=text_encoder_2,
        tokenizer=None,
        tokenizer_2=_load_tokenizer(Path(path) / "tokenizer_2"),
        unet=unet,
        scheduler=scheduler,
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    )
    return _write_pipeline(pipe, path)


def sd15_component_state(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Load every weight-bearing component of a saved folder as ``{component: state_dict}``.

    Works for SD1/SD2/SDXL folders alike (any ``<component>/config.json`` with weights); the state
    dicts come from instantiating the real classes, so keys match ``model.state_dict()``.
    """
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(path), local_files_only=True)
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            out[name] = {k: v.detach().clone() for k, v in component.state_dict().items()}
    return out
