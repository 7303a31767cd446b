"""Latent upscale modes: A1111's names, the interpolate setting each stands for, the target grid."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipelines.errors import ValidationError
from pipelines.imaging.latent_upscale import LATENT_UPSCALE_MODES, is_latent_mode, upscale_latents

A1111_NAMES = ["Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)",
               "Latent (nearest)", "Latent (nearest-exact)"]


def test_names_and_order_match_a1111():
    assert list(LATENT_UPSCALE_MODES) == A1111_NAMES
    assert all(is_latent_mode(name) for name in A1111_NAMES)
    assert not is_latent_mode("Lanczos")


@pytest.mark.parametrize("name", A1111_NAMES)
def test_each_mode_reaches_the_latent_grid_of_the_target(name):
    latents = torch.randn(2, 4, 8, 12, generator=torch.Generator().manual_seed(0))
    out = upscale_latents(latents, width=200, height=136, mode=name)
    assert out.shape == (2, 4, 136 // 8, 200 // 8)
    assert out.dtype == latents.dtype
    assert torch.isfinite(out).all()


def test_modes_use_their_own_interpolation():
    latents = torch.randn(1, 4, 6, 6, generator=torch.Generator().manual_seed(1))
    outs = {name: upscale_latents(latents, 88, 88, name) for name in A1111_NAMES}
    # nearest copies source values: every output value is one of the inputs
    source = set(latents.flatten().tolist())
    assert set(outs["Latent (nearest)"].flatten().tolist()) <= source
    # bilinear vs bicubic vs antialias are all different resamplings
    keys = ["Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)"]
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not torch.allclose(outs[a], outs[b]), (a, b)
    expected = F.interpolate(latents, size=(11, 11), mode="bicubic", antialias=False, align_corners=False)
    assert torch.allclose(outs["Latent (bicubic)"], expected)


def test_downscale_with_antialias_differs_from_plain():
    latents = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(2))
    plain = upscale_latents(latents, 64, 64, "Latent")
    smooth = upscale_latents(latents, 64, 64, "Latent (antialiased)")
    assert plain.shape == smooth.shape == (1, 4, 8, 8)
    assert smooth.std() < plain.std()  # antialiasing averages more cells when shrinking


def test_vae_scale_factor_is_respected():
    latents = torch.zeros(1, 4, 8, 8)
    assert upscale_latents(latents, 128, 64, vae_scale_factor=4).shape == (1, 4, 16, 32)


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValidationError) as err:
        upscale_latents(torch.zeros(1, 4, 8, 8), 128, 128, "Lanczos")
    assert "Latent (bicubic)" in str(err.value)


def test_half_precision_is_kept():
    latents = torch.randn(1, 4, 8, 8).to(torch.bfloat16)
    out = upscale_latents(latents, 128, 128, "Latent (bicubic antialiased)")
    assert out.dtype == torch.bfloat16 and out.shape == (1, 4, 16, 16)
