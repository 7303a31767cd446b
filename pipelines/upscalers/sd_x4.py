"""The Stable Diffusion x4 upscaler (diffusers ``StableDiffusionUpscalePipeline``) as an upscaler.

A folder (or HF cache repo) whose ``model_index.json`` names ``StableDiffusionUpscalePipeline`` is
kept out of the checkpoint list and offered here as "SD x4 upscaler". It is loaded through the model
store (same cache, byte budget, device, dtype and attention policy as checkpoints) and run tile by tile, so big
images fit in memory, progress is reported per tile and an interrupt stops between tiles.

Defaults (documented, A1111-like): prompt ``""``, ``noise_level`` 20, 20 steps, seed 0. With an empty
prompt, classifier-free guidance would compare two identical predictions, so it is skipped
(``guidance_scale`` 1), which halves the work and gives the same image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord
from pipelines.models.store import ModelStore
from pipelines.upscalers.tiling import StopFn, TileConfig, TileFn, upscale_tiled

SD_X4_NAME = "SD x4 upscaler"
PROMPT = ""
NOISE_LEVEL = 20
STEPS = 20
SEED = 0
TILES = TileConfig(tile=128, overlap=16, min_tile=32)  # low-res pixels; each tile becomes 512 px
MULTIPLE = 8  # the UNet halves the latent up to three times


def job_view(base: Any) -> Any:
    """The loaded modules with schedulers of this job's own (diffusers schedulers keep per-run state)."""
    parts = dict(base.components)
    parts["scheduler"] = type(base.scheduler).from_config(base.scheduler.config)
    parts["low_res_scheduler"] = type(base.low_res_scheduler).from_config(base.low_res_scheduler.config)
    view = type(base)(**parts, max_noise_level=base.config.max_noise_level)
    view.set_progress_bar_config(disable=True)
    return view


def _tile_model(pipe: Any) -> Any:
    """``(1, 3, h, w)`` in [0, 1] -> ``(1, 3, 4h, 4w)``, padding to a multiple of 8 and cropping back."""

    def model(tile: torch.Tensor) -> torch.Tensor:
        h, w = tile.shape[-2:]
        padded = torch.nn.functional.pad(tile, (0, -w % MULTIPLE, 0, -h % MULTIPLE), mode="replicate")
        array = (padded[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        out = pipe(prompt=PROMPT, image=Image.fromarray(array, "RGB"), num_inference_steps=STEPS,
                   noise_level=NOISE_LEVEL, guidance_scale=1.0, generator=torch.Generator("cpu").manual_seed(SEED),
                   output_type="np").images
        return torch.from_numpy(np.ascontiguousarray(out[0])).permute(2, 0, 1)[None, :, : 4 * h, : 4 * w]

    return model


@torch.inference_mode()
def run_sd_x4(store: ModelStore, record: ModelRecord, image: Image.Image, *, on_tile: TileFn | None = None,
              should_stop: StopFn | None = None) -> Image.Image:
    """``image`` (RGB) upscaled 4x by the pipeline in ``record``."""
    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    with store.use(record, model_type=ModelType.SD_X4_UPSCALER) as loaded:
        out = upscale_tiled(pixels, _tile_model(job_view(loaded.pipeline)), 4, TILES, on_tile=on_tile,
                            should_stop=should_stop)
    array = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(array, "RGB")
