"""The initial noise of txt2img with A1111's variation seed and "resize seed from".

Every image's noise is drawn on the CPU from its own seed (as the pipelines draw it), so an image
depends only on its seeds. With a variation seed the noise is the spherical interpolation of the
seed's noise and the variation seed's noise at the variation strength; with "resize seed from",
the noise is drawn at that size and placed in the middle of the noise of the real size, so a
composition survives a change of size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Variation:
    """A1111's variation settings for one job; ``active`` False means plain per-seed noise."""

    subseed: int = -1
    strength: float = 0.0
    resize_from: tuple[int, int] | None = None  # (width, height) in pixels

    @property
    def active(self) -> bool:
        return self.strength > 0 or self.resize_from is not None


def seed_noise(seed: int, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise of ``shape`` from ``seed``, drawn on the CPU."""
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=dtype)


def slerp(t: float, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from ``start`` (t = 0) to ``end`` (t = 1), row by row of the last-but-one axis
    (A1111's convention for noise of shape (channels, height, width)); nearly parallel rows fall back to a line."""
    a = start / torch.linalg.vector_norm(start, dim=1, keepdim=True)
    b = end / torch.linalg.vector_norm(end, dim=1, keepdim=True)
    cos = (a * b).sum(1)
    if cos.mean() > 0.9995:
        return start * (1 - t) + end * t
    angle = torch.acos(cos)
    sin = torch.sin(angle)
    return (torch.sin((1 - t) * angle) / sin).unsqueeze(1) * start + (torch.sin(t * angle) / sin).unsqueeze(1) * end


def centred(noise: torch.Tensor, into: torch.Tensor) -> torch.Tensor:
    """``into`` with the middle of ``noise`` written over its middle (either may be the larger)."""
    out = into.clone()
    _, h, w = noise.shape
    _, big_h, big_w = into.shape
    rows, cols = min(h, big_h), min(w, big_w)
    src_top, src_left = (h - rows) // 2, (w - cols) // 2
    dst_top, dst_left = (big_h - rows) // 2, (big_w - cols) // 2
    out[:, dst_top:dst_top + rows, dst_left:dst_left + cols] = noise[:, src_top:src_top + rows,
                                                                     src_left:src_left + cols]
    return out


def initial_noise(seeds: list[int], subseeds: list[int], variation: Variation, *, channels: int,
                  size: tuple[int, int], scale: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(batch, channels, height / scale, width / scale)`` noise for ``seeds`` (one per image)."""
    shape = (channels, size[1] // scale, size[0] // scale)
    drawn = shape if variation.resize_from is None else (channels, variation.resize_from[1] // scale,
                                                         variation.resize_from[0] // scale)
    out = []
    for seed, subseed in zip(seeds, subseeds, strict=True):
        noise = seed_noise(seed, (1, *drawn), dtype)[0]
        if variation.strength > 0:
            noise = slerp(variation.strength, noise, seed_noise(subseed, (1, *drawn), dtype)[0])
        if drawn != shape:
            noise = centred(noise, seed_noise(seed, (1, *shape), dtype)[0])
        out.append(noise)
    return torch.stack(out)
