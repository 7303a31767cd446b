"""Tiled upscaling: tiles blend back into the untiled result, and out-of-memory halves the tile."""

from __future__ import annotations

import pytest
import torch

from pipelines.errors import GenerationInterrupted
from pipelines.upscalers.tiling import TileConfig, UpscaleOutOfMemory, is_out_of_memory, tile_starts, upscale_tiled


class PixelShuffleModel(torch.nn.Module):
    """A 2x model with no receptive field beyond one pixel (1x1 conv + pixel shuffle)."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3 * scale * scale, 1)
        self.shuffle = torch.nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class RunsOutOfMemoryAbove(torch.nn.Module):
    """Test double of a *model*: raises torch.OutOfMemoryError for inputs bigger than ``limit`` pixels a side."""

    def __init__(self, inner: torch.nn.Module, limit: int, error: type[Exception] = torch.OutOfMemoryError) -> None:
        super().__init__()
        self.inner, self.limit, self.error = inner, limit, error
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise self.error("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


@torch.no_grad()
def test_tiled_equals_untiled_for_a_pointwise_model():
    model = PixelShuffleModel()
    image = torch.rand(1, 3, 50, 70)
    tiles: list[tuple[int, int]] = []
    out = upscale_tiled(image, model, 2, TileConfig(tile=16, overlap=4), on_tile=lambda d, t: tiles.append((d, t)))
    assert out.shape == (1, 3, 100, 140)
    torch.testing.assert_close(out, model(image), atol=1e-5, rtol=1e-5)
    total = len(tile_starts(50, 16, 4)) * len(tile_starts(70, 16, 4))
    assert tiles == [(i, total) for i in range(1, total + 1)] and total > 1


@torch.no_grad()
def test_tiled_rrdbnet_is_close_to_untiled_and_closer_with_more_overlap():
    from pipelines.models.spandrel_import import SpandrelLoader
    from tests.support.tiny_upscalers import rrdbnet_state_dict

    spandrel = SpandrelLoader().get()
    descriptor = spandrel.registry.load(spandrel.canonicalize(rrdbnet_state_dict(scale=2)))
    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 40)
    whole = descriptor(image)
    spread = (whole - whole.mean()).abs().max()
    wide = (upscale_tiled(image, descriptor, 2, TileConfig(tile=32, overlap=16)) - whole).abs()
    narrow = (upscale_tiled(image, descriptor, 2, TileConfig(tile=32, overlap=4)) - whole).abs()
    assert spread > 0.02  # the model's output really depends on the input
    assert wide.max() < 0.1 * spread and wide.mean() < 0.005 * spread
    assert wide.mean() < narrow.mean()


def test_tile_starts_cover_the_whole_length():
    for length in (1, 16, 17, 100, 191, 192, 193, 500):
        starts = tile_starts(length, 64, 8)
        covered = set()
        for s in starts:
            covered |= set(range(s, min(length, s + 64)))
        assert covered == set(range(length)) and starts[0] == 0 and starts[-1] + min(64, length) == length


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, RuntimeError])
@torch.no_grad()
def test_out_of_memory_halves_the_tile_and_completes(error):
    inner = PixelShuffleModel()
    model = RunsOutOfMemoryAbove(inner, limit=20, error=error)
    image = torch.rand(1, 3, 48, 48)
    out = upscale_tiled(image, model, 2, TileConfig(tile=64, overlap=4, min_tile=8))
    torch.testing.assert_close(out, inner(image), atol=1e-5, rtol=1e-5)
    tried = sorted({max(s) for s in model.sizes}, reverse=True)
    assert tried[0] == 48 and max(s for s in tried if s <= 20) == 16  # 64 -> 32 -> 16 tiles


@torch.no_grad()
def test_out_of_memory_below_the_minimum_tile_is_a_clear_error():
    model = RunsOutOfMemoryAbove(PixelShuffleModel(), limit=4)
    with pytest.raises(UpscaleOutOfMemory, match="out of memory even with 16px tiles"):
        upscale_tiled(torch.rand(1, 3, 64, 64), model, 2, TileConfig(tile=64, overlap=4, min_tile=16))


def test_other_errors_are_not_taken_for_out_of_memory():
    assert is_out_of_memory(torch.OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))

    def broken(_x):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        upscale_tiled(torch.rand(1, 3, 8, 8), broken, 2)


@torch.no_grad()
def test_should_stop_interrupts_between_tiles():
    calls = []
    with pytest.raises(GenerationInterrupted):
        upscale_tiled(torch.rand(1, 3, 64, 64), PixelShuffleModel(), 2, TileConfig(tile=16, overlap=4),
                      on_tile=lambda d, t: calls.append(d), should_stop=lambda: len(calls) >= 3)
    assert calls == [1, 2, 3]
