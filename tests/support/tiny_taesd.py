"""A tiny random-weight TAESD (diffusers ``AutoencoderTiny``, the real class) that fits the tiny SD models:
4 latent channels, 8x downscaling (four levels), 8-channel blocks, about 18k weights."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

__all__ = ["save_tiny_taesd", "save_tiny_taesd_file", "tiny_taesd"]


def tiny_taesd(*, seed: int = 0):
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    return AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                           num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1), latent_channels=4)


def save_tiny_taesd(path: Path, *, seed: int = 0) -> Path:
    """A diffusers ``AutoencoderTiny`` folder (``config.json`` + safetensors weights) at ``path``."""
    tiny_taesd(seed=seed).save_pretrained(str(path), safe_serialization=True)
    return path


def save_tiny_taesd_file(path: Path, *, seed: int = 0) -> Path:
    """The same weights as one ``.safetensors`` file (diffusers layout: ``encoder.layers.*``, ``decoder.layers.*``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tiny_taesd(seed=seed).state_dict().items()}, str(path))
    return path
