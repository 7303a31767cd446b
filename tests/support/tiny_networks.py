"""Small LoRA, embedding and VAE files with random weights, in the layouts users download.

The LoRA is in kohya's format (``lora_unet_*`` / ``lora_te_*`` with ``lora_down``/``lora_up``/``alpha``),
the embedding in A1111's safetensors format (``emb_params``), the VAE a real diffusers ``AutoencoderKL``
saved as a folder or as one file of its state dict.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

# A few of the SD1 UNet's cross-attention layers and one text-encoder layer, as kohya names them.
_UNET_LAYERS = [f"lora_unet_down_blocks_{b}_attentions_{a}_transformer_blocks_0_attn2_{p}"
                for b in range(3) for a in range(2) for p in ("to_k", "to_v")]
_TE_LAYERS = [f"lora_te_text_model_encoder_layers_{i}_self_attn_{p}" for i in range(2) for p in ("q_proj", "v_proj")]


def save_kohya_lora(path: Path, *, context_width: int = 768, rank: int = 8, seed: int = 0,
                    sdxl: bool = False) -> Path:
    """A kohya-format LoRA of a few hundred KiB (``context_width`` 768: SD1, 1024: SD2, 2048: SDXL)."""
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for name in _UNET_LAYERS:
        tensors[f"{name}.lora_down.weight"] = torch.randn(rank, context_width, generator=gen) * 0.01
        tensors[f"{name}.lora_up.weight"] = torch.randn(320, rank, generator=gen) * 0.01
        tensors[f"{name}.alpha"] = torch.tensor(float(rank))
    prefixes = ("lora_te1_", "lora_te2_") if sdxl else ("lora_te_",)
    for prefix in prefixes:
        for name in _TE_LAYERS:
            key = name.replace("lora_te_", prefix)
            tensors[f"{key}.lora_down.weight"] = torch.randn(rank, 768, generator=gen) * 0.01
            tensors[f"{key}.lora_up.weight"] = torch.randn(768, rank, generator=gen) * 0.01
            tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora"})
    return path


def save_embedding(path: Path, *, width: int = 768, vectors: int = 2, seed: int = 0, sdxl: bool = False) -> Path:
    """A textual-inversion embedding: ``emb_params`` (SD1/SD2) or ``clip_l`` + ``clip_g`` (SDXL)."""
    gen = torch.Generator().manual_seed(seed)
    if sdxl:
        tensors = {"clip_l": torch.randn(vectors, 768, generator=gen),
                   "clip_g": torch.randn(vectors, 1280, generator=gen)}
    else:
        tensors = {"emb_params": torch.randn(vectors, width, generator=gen)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def tiny_vae(seed: int = 0, *, latent_channels: int = 4, scaling_factor: float = 0.18215, layers_per_block: int = 1):
    """An ``AutoencoderKL`` shaped like the tiny checkpoints' own (tests.support.tiny_models: four levels, so
    an 8x downscale, tiny widths), with weights of its own; ``latent_channels`` 16 makes a VAE of another
    latent shape (SD3/Flux-like), ``layers_per_block`` 2 one of another design with the same latents."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=[32, 32, 64, 64], layers_per_block=layers_per_block,
                         latent_channels=latent_channels,
                         down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                         sample_size=256, scaling_factor=scaling_factor)


def save_vae_folder(path: Path, *, seed: int = 0, scaling_factor: float = 0.18215) -> Path:
    """A diffusers-layout VAE folder (``config.json`` + safetensors weights)."""
    tiny_vae(seed, scaling_factor=scaling_factor).save_pretrained(str(path), safe_serialization=True)
    return path


def save_vae_file(path: Path, *, seed: int = 0, layout: str = "diffusers", latent_channels: int = 4,
                  layers_per_block: int = 1) -> Path:
    """One VAE state dict in a ``.safetensors`` file, as ``models/VAE`` holds them: diffusers key names
    (``layout="diffusers"``) or the original LDM ones (``"original"``: ``encoder.down.0...``, as A1111's
    ``vae-ft-mse-840000-ema-pruned.safetensors``)."""
    vae = tiny_vae(seed, latent_channels=latent_channels, layers_per_block=layers_per_block)
    state = {k: v.contiguous() for k, v in vae.state_dict().items()}
    if layout == "original":
        from tests.support.ldm_export import vae_to_ldm

        state = {k: v.contiguous() for k, v in vae_to_ldm(state, dict(vae.config)).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path
