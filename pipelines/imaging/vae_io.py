"""Latents to pixels and back with a given VAE (the checkpoint's own, another one, or a TAESD), outside the
pipeline call: live previews decoded by a real decoder, and img2img's init image encoded by another VAE than
the one that decodes.

Both follow the pipelines' own convention: latents are scaled by ``vae.config.scaling_factor`` (1.0 for TAESD,
whose latents are the scaled ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from pipelines.imaging.preview import PREVIEW_MAX_SIDE


def _scaling(vae: Any) -> float:
    return float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)


@dataclass(frozen=True)
class DecodedPreviewer:
    """A live preview decoded by ``vae`` (A1111's "TAESD" and "Full" live preview methods), at most
    ``PREVIEW_MAX_SIDE`` pixels on a side."""

    vae: Any

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor, size: tuple[int, int]) -> Image.Image:
        param = next(self.vae.parameters())
        first = latents[:1].detach().to(param.device, param.dtype) / _scaling(self.vae)
        pixels = self.vae.decode(first).sample[0].float().clamp(-1, 1)
        array = ((pixels + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        scale = min(1.0, PREVIEW_MAX_SIDE / max(size))
        shown = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        return Image.fromarray(array).resize(shown, Image.Resampling.BILINEAR)


@torch.no_grad()
def encode_with(vae: Any, pixels: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Scaled latents of ``pixels`` (1, 3, H, W in [-1, 1]) for each generator: a sample of a KL VAE's latent
    distribution (as diffusers draws it), or a TAESD's deterministic latents (one copy per generator)."""
    param = next(vae.parameters())
    batch = pixels.to(device=param.device, dtype=param.dtype).repeat(len(generators), 1, 1, 1)
    encoded = vae.encode(batch)
    if hasattr(encoded, "latent_dist"):
        latents = encoded.latent_dist.sample(generator=generators)
    else:
        latents = encoded.latents
    return latents * _scaling(vae)
