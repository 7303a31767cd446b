"""Tiled upscaling: overlapping tiles blended with a linear ramp, the tile halved on out-of-memory.

A model is run on ``tile x tile`` pieces of the image that overlap by ``overlap`` pixels; each output
tile is weighted by a window that ramps linearly across the overlap on its inner edges (1 inside, 1 at
the image border), and the weighted sum is normalised. When the device runs out of memory the tile is
halved and the image started again, down to ``min_tile``; then a clear error is raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pipelines.errors import AtelierError, GenerationInterrupted

log = logging.getLogger(__name__)

TileFn = Callable[[int, int], None]  # (tiles done, tiles in all)
StopFn = Callable[[], bool]


class UpscaleOutOfMemory(AtelierError):
    """Even the smallest tile did not fit in memory."""


@dataclass(frozen=True)
class TileConfig:
    tile: int = 192  # A1111's ESRGAN_tile default
    overlap: int = 8  # A1111's ESRGAN_tile_overlap default
    min_tile: int = 32


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or an allocator RuntimeError saying so (MPS, CPU)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``length`` with tiles of ``tile`` overlapping by at least ``overlap``."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _ramp(length: int, ramp: int, *, rise: bool, fall: bool) -> torch.Tensor:
    """1D window: linear from ~0 to 1 over ``ramp`` at a rising edge, 1 -> ~0 at a falling edge."""
    window = torch.ones(length)
    ramp = min(ramp, length // 2)
    if ramp > 0:
        edge = torch.arange(1, ramp + 1, dtype=torch.float32) / (ramp + 1)
        if rise:
            window[:ramp] = edge
        if fall:
            window[length - ramp:] = edge.flip(0)
    return window


def _tiled_pass(image: torch.Tensor, model: Callable[[torch.Tensor], torch.Tensor], scale: int, tile: int,
                overlap: int, on_tile: TileFn | None, should_stop: StopFn | None) -> torch.Tensor:
    _, _, height, width = image.shape
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    total = len(ys) * len(xs)
    out: torch.Tensor | None = None
    weight = torch.zeros(1, 1, height * scale, width * scale)
    done = 0
    for y in ys:
        for x in xs:
            if should_stop is not None and should_stop():
                raise GenerationInterrupted("upscaling was interrupted")
            piece = image[:, :, y:y + tile, x:x + tile]
            result = model(piece).float().cpu()
            th, tw = result.shape[-2:]
            if out is None:
                out = torch.zeros(1, result.shape[1], height * scale, width * scale)
            wy = _ramp(th, overlap * scale, rise=y > 0, fall=y + tile < height)
            wx = _ramp(tw, overlap * scale, rise=x > 0, fall=x + tile < width)
            window = (wy[:, None] * wx[None, :])[None, None]
            oy, ox = y * scale, x * scale
            out[:, :, oy:oy + th, ox:ox + tw] += result * window
            weight[:, :, oy:oy + th, ox:ox + tw] += window
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    assert out is not None
    return out / weight


def upscale_tiled(image: torch.Tensor, model: Callable[[torch.Tensor], torch.Tensor], scale: int,
                  config: TileConfig = TileConfig(), *, on_tile: TileFn | None = None,
                  should_stop: StopFn | None = None) -> torch.Tensor:
    """Run ``model`` (input ``(1, C, h, w)`` -> ``(1, C', h*scale, w*scale)``) over ``image`` in tiles.

    Returns a float32 CPU tensor ``(1, C', H*scale, W*scale)``. ``on_tile(done, total)`` is called after
    every tile; ``should_stop()`` is checked before every tile (GenerationInterrupted when it says so).
    """
    tile = config.tile
    while True:
        try:
            return _tiled_pass(image, model, scale, tile, min(config.overlap, tile // 2), on_tile, should_stop)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if tile // 2 < config.min_tile:
                raise UpscaleOutOfMemory(
                    f"upscaling ran out of memory even with {tile}px tiles; free memory (unload the checkpoint) "
                    "or use a smaller image or a lighter upscaler") from exc
            log.warning("upscaling ran out of memory with %dpx tiles; retrying with %dpx", tile, tile // 2)
            tile //= 2
