"""Resizing latents directly (A1111's "Latent" upscale modes), as hires fix and img2img resize mode 3 use.

The names are A1111's (they appear in the API's ``/latent-upscale-modes``, in ``hr_upscaler`` and in
infotexts); each is one ``torch.nn.functional.interpolate`` setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipelines.errors import ValidationError


@dataclass(frozen=True)
class LatentUpscaleMode:
    """How ``interpolate`` resizes the latent grid for one named mode."""

    interpolation: str
    antialias: bool


LATENT_UPSCALE_MODES: dict[str, LatentUpscaleMode] = {
    "Latent": LatentUpscaleMode("bilinear", antialias=False),
    "Latent (antialiased)": LatentUpscaleMode("bilinear", antialias=True),
    "Latent (bicubic)": LatentUpscaleMode("bicubic", antialias=False),
    "Latent (bicubic antialiased)": LatentUpscaleMode("bicubic", antialias=True),
    "Latent (nearest)": LatentUpscaleMode("nearest", antialias=False),
    "Latent (nearest-exact)": LatentUpscaleMode("nearest-exact", antialias=False),
}


def is_latent_mode(name: str) -> bool:
    return name in LATENT_UPSCALE_MODES


def upscale_latents(latents: torch.Tensor, width: int, height: int, mode: str = "Latent", *,
                    vae_scale_factor: int = 8) -> torch.Tensor:
    """``latents`` (N, C, h, w) resized to the latent grid of a ``width`` x ``height`` image.

    ``vae_scale_factor`` is the pixels per latent cell (8 for every SD VAE; pass the pipeline's
    ``vae_scale_factor`` for a VAE that differs).
    """
    spec = LATENT_UPSCALE_MODES.get(mode)
    if spec is None:
        raise ValidationError("mode", f"unknown latent upscale mode {mode!r}; one of: "
                              + ", ".join(LATENT_UPSCALE_MODES))
    if latents.ndim != 4:
        raise ValueError(f"latents must be (batch, channels, height, width), got shape {tuple(latents.shape)}")
    size = (height // vae_scale_factor, width // vae_scale_factor)
    if min(size) < 1:
        raise ValidationError("width" if size[1] < 1 else "height",
                              f"{width}x{height} is smaller than one latent cell ({vae_scale_factor} px)")
    # antialias only applies to bilinear/bicubic; interpolate rejects align_corners for nearest modes
    options: dict = {"antialias": spec.antialias}
    if spec.interpolation in ("bilinear", "bicubic"):
        options["align_corners"] = False
    # interpolate has no half-precision bicubic/antialias kernels on some devices: resize in float32
    resized = F.interpolate(latents.float(), size=size, mode=spec.interpolation, **options)
    return resized.to(latents.dtype)
