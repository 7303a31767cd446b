"""Cheap live previews: latents to RGB with a linear map fitted to the model's own VAE.

A full VAE decode every few steps would cost as much as a step on CPU. Instead
each model's VAE decodes a small random latent once; a least-squares fit from
latent channels to the mean colour of each decoded block gives a 4->3 linear
map (plus bias) used for every preview afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

# Previews are encoded for the browser on every update; the page scales them up. Encoding
# a full 1024x1024 preview costs ~50 ms, a 256x256 one ~4 ms.
PREVIEW_MAX_SIDE = 256


@dataclass(frozen=True)
class LatentPreviewer:
    weights: torch.Tensor  # (latent_channels, 3)
    bias: torch.Tensor  # (3,)

    def __call__(self, latents: torch.Tensor, size: tuple[int, int]) -> Image.Image:
        """A preview in the image's aspect, at most ``PREVIEW_MAX_SIDE`` pixels wide or high."""
        lat = latents[0].detach().float().cpu()  # (C, h, w)
        rgb = torch.einsum("chw,cr->hwr", lat, self.weights) + self.bias
        array = ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()
        scale = min(1.0, PREVIEW_MAX_SIDE / max(size))
        shown = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        return Image.fromarray(np.ascontiguousarray(array)).resize(shown, Image.Resampling.NEAREST)


@torch.no_grad()
def fit_previewer(vae, *, latent_size: int = 8, seed: int = 0) -> LatentPreviewer:
    """Fit the latent->RGB map for one VAE (one small decode)."""
    param = next(vae.parameters())
    channels = vae.config.latent_channels
    scaling = getattr(vae.config, "scaling_factor", 1.0) or 1.0
    gen = torch.Generator("cpu").manual_seed(seed)
    z = torch.randn((1, channels, latent_size, latent_size), generator=gen)
    image = vae.decode((z / scaling).to(param.device, param.dtype)).sample.float().cpu()
    factor = image.shape[-1] // latent_size
    blocks = torch.nn.functional.avg_pool2d(image, factor)  # (1, 3, h, w)
    x = torch.cat([z[0].reshape(channels, -1).T, torch.ones(latent_size * latent_size, 1)], dim=1)
    y = blocks[0].reshape(3, -1).T
    solution = torch.linalg.lstsq(x, y).solution  # (channels + 1, 3)
    return LatentPreviewer(weights=solution[:channels], bias=solution[channels])
