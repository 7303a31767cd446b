"""What one job needs in memory beyond the weights, in bytes, and the lowest-saving level that fits.

A rough figure that errs high, counted the way the pipelines spend memory: the UNet's activations grow with
the latent pixels of every image it denoises at once (twice the batch with CFG), the VAE decoder's with the
output pixels of the images it decodes at once. VAE slicing and tiling cap the decoder's at one tile of one
image; model CPU offload gives back the device memory of the models that are not running (text encoders,
VAE) while the UNet runs. Attention slicing (only used where attention is not memory-efficient already) is
not counted: the estimate errs high. The weights themselves are already on
the device when a job starts, so the free memory read then has them counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pipelines.models.architecture import Architecture
from pipelines.models.loaded import LoadedModel
from pipelines.models.low_memory import MemoryLevel
from pipelines.models.memory import fmt, module_bytes

LATENT_CELL = 8  # pixels per latent pixel (the VAE's scale factor) for every architecture Atelier runs
# Activation elements the UNet keeps alive at its peak, per latent pixel of one image and per channel of its first
# block (320 for SD 1.x/2.x/SDXL): with SDPA, SD 1.5 at 512x512 and SDXL at 1024x1024 in fp16 peak at about 0.7
# and 2.5 GiB over the weights with CFG. Scaling by the width makes a small model's estimate small too.
UNET_ELEMENTS_PER_CHANNEL = {Architecture.SD1: 150, Architecture.SD2: 150, Architecture.SDXL: 125}
DEFAULT_UNET_ELEMENTS_PER_CHANNEL = 150
# The decoder's last blocks run at full resolution with 1-2x its first width (128 in SD's VAE), a few tensors alive.
VAE_ELEMENTS_PER_CHANNEL = 5

@dataclass(frozen=True)
class JobEstimate:
    """Bytes one job needs on the device beyond the weights, per saving level, and the numbers behind them."""

    denoise_bytes: int  # the largest UNet pass: every image of a batch, twice with CFG
    decode_bytes: int  # decoding one batch in one piece
    tiled_decode_bytes: int  # decoding one tile of one image
    offloadable_bytes: int  # weights that leave the device while the UNet runs, with model CPU offload

    def needed(self, level: MemoryLevel) -> int:
        if level is MemoryLevel.NORMAL:
            return max(self.denoise_bytes, self.decode_bytes)
        return max(self.denoise_bytes, self.tiled_decode_bytes)

    def available(self, free_bytes: int, level: MemoryLevel) -> int:
        return free_bytes + (self.offloadable_bytes if level is MemoryLevel.OFFLOAD else 0)

    def fits(self, free_bytes: int, level: MemoryLevel) -> bool:
        return self.needed(level) <= self.available(free_bytes, level)

    def explain(self, free_bytes: int) -> str:
        return (f"needs {fmt(self.needed(MemoryLevel.NORMAL))} (denoise {fmt(self.denoise_bytes)}, decode "
                f"{fmt(self.decode_bytes)}), {fmt(self.needed(MemoryLevel.SLICED))} with VAE tiling; "
                f"{fmt(free_bytes)} free, +{fmt(self.offloadable_bytes)} with CPU offload")


def job_sizes(request: Any) -> list[tuple[int, int]]:
    """Every (width, height) a job denoises and decodes at: the request's (outpaint's whole canvas), and hires
    fix's second pass."""
    sizes = [getattr(request, "canvas_size", None) or (request.width, request.height)]
    hires = getattr(request, "hires", None)
    if hires is not None:
        sizes.append(hires.upscale_size(request.width, request.height))
    return sizes


def _first_width(module: Any, default: int) -> int:
    """The channels of a UNet's or VAE's first block, from its config."""
    widths = getattr(getattr(module, "config", None), "block_out_channels", None)
    return int(widths[0]) if widths else default


def estimate_job(request: Any, loaded: LoadedModel) -> JobEstimate:
    """The bytes ``request`` needs on ``loaded``'s device, from its sizes, batch size, the model's architecture,
    widths, dtype and weights."""
    pipe = loaded.pipeline
    item = torch.finfo(loaded.dtype).bits // 8
    batch = request.batch_size
    per_latent = _first_width(pipe.unet, 320) * UNET_ELEMENTS_PER_CHANNEL.get(loaded.record.architecture,
                                                                              DEFAULT_UNET_ELEMENTS_PER_CHANNEL)
    per_pixel = _first_width(pipe.vae, 128) * VAE_ELEMENTS_PER_CHANNEL
    guided = 2 if request.cfg_scale > 1 else 1
    denoise = decode = 0
    for width, height in job_sizes(request):
        latent_pixels = (width // LATENT_CELL) * (height // LATENT_CELL)
        denoise = max(denoise, batch * guided * latent_pixels * per_latent * item)
        decode = max(decode, batch * width * height * per_pixel * item)
    tile = getattr(pipe.vae, "tile_sample_min_size", 512)
    tile = max(tile) if isinstance(tile, list | tuple) else int(tile)
    widest = max(max(size) for size in job_sizes(request))
    tiled = min(tile, widest) ** 2 * per_pixel * item
    offloadable = sum(module_bytes(module) for name, module in pipe.components.items()
                      if isinstance(module, torch.nn.Module) and name != "unet")
    return JobEstimate(denoise, decode, tiled, offloadable)


def choose_level(estimate: JobEstimate, free_bytes: int, levels: list[MemoryLevel]) -> MemoryLevel:
    """The first of ``levels`` (lowest saving first) whose needs fit ``free_bytes``; the last one if none does."""
    for level in levels:
        if estimate.fits(free_bytes, level):
            return level
    return levels[-1]
