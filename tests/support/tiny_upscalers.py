"""Tiny random-weight upscalers for the tests.

* :func:`rrdbnet_state_dict` / :func:`save_rrdbnet` - an ESRGAN RRDBNet in the Real-ESRGAN (basicsr)
  key layout (``conv_first``, ``body.N.rdbK.convJ``, ``conv_body``, ``conv_upN``, ``conv_hr``,
  ``conv_last``), the layout of ``RealESRGAN_x4plus.pth`` and most community ESRGAN files; spandrel
  detects it as architecture ``ESRGAN`` and converts it itself. 8 features, 1 block: a few KB.
* :func:`save_sd_x4_upscaler` - a diffusers ``StableDiffusionUpscalePipeline`` folder (UNet with 7 input
  channels, a VAE that downsamples 4x, DDPM low-res scheduler, tiny CLIP text encoder).
"""

from __future__ import annotations

from pathlib import Path

import torch

GROWTH = 32  # RRDBNet's growth channels (fixed at 32 in ESRGAN and in spandrel's loader)


def _conv(out_ch: int, in_ch: int, gen: torch.Generator, std: float = 0.05) -> dict[str, torch.Tensor]:
    return {"weight": torch.randn(out_ch, in_ch, 3, 3, generator=gen) * std,
            "bias": torch.randn(out_ch, generator=gen) * 0.01}


def rrdbnet_state_dict(*, scale: int = 4, features: int = 8, blocks: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random RRDBNet weights (x2 or x4) in the Real-ESRGAN key layout."""
    if scale not in (2, 4):
        raise ValueError("scale must be 2 or 4")
    gen = torch.Generator().manual_seed(seed)
    layers: dict[str, dict[str, torch.Tensor]] = {"conv_first": _conv(features, 3, gen)}
    for b in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                in_ch = features + (c - 1) * GROWTH
                out_ch = features if c == 5 else GROWTH
                layers[f"body.{b}.rdb{r}.conv{c}"] = _conv(out_ch, in_ch, gen)
    layers["conv_body"] = _conv(features, features, gen)
    for n in range(1, {2: 1, 4: 2}[scale] + 1):
        layers[f"conv_up{n}"] = _conv(features, features, gen)
    layers["conv_hr"] = _conv(features, features, gen)
    layers["conv_last"] = _conv(3, features, gen, std=0.2)
    layers["conv_last"]["bias"] += 0.5  # outputs around mid-grey, not clamped to black
    return {f"{name}.{kind}": t.contiguous() for name, params in layers.items() for kind, t in params.items()}


def save_rrdbnet(path: Path, *, scale: int = 4, seed: int = 0) -> Path:
    """Write a tiny RRDBNet to ``path`` (.safetensors, or a pickled .pth for the allow_pickle tests)."""
    state = rrdbnet_state_dict(scale=scale, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def save_sd_x4_upscaler(path: Path, *, seed: int = 0) -> Path:
    """A tiny ``StableDiffusionUpscalePipeline`` folder: the layout of stabilityai/stable-diffusion-x4-upscaler."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    from tests.support.tiny_models import _clip_text_config, _load_tokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 32, 64), layers_per_block=1, sample_size=32,
        in_channels=7, out_channels=4,  # 4 latent channels + the 3-channel low-res image
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, use_linear_projection=True,
        num_class_embeds=1000,  # the noise level is a class label, as in the real model
    )
    vae = AutoencoderKL(  # three levels: 4x down, like the x4 upscaler's VAE
        block_out_channels=[32, 32, 64], layers_per_block=1, in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
        latent_channels=4, scaling_factor=0.08333,
    )
    text_encoder = CLIPTextModel(_clip_text_config(hidden_size=32, hidden_act="gelu"))
    pipe = StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=_load_tokenizer(path / "_tokenizer_src"), unet=unet,
        low_res_scheduler=DDPMScheduler(), scheduler=DDIMScheduler(prediction_type="v_prediction"),
        max_noise_level=350,
    )
    pipe.save_pretrained(str(path), safe_serialization=True)
    import shutil

    shutil.rmtree(path / "_tokenizer_src", ignore_errors=True)
    return path
