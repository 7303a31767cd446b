"""The upscaler list: what upscalers exist (built-ins and the store's upscaler models) and running them.

``AppContext.upscalers`` is the one instance; hires fix, the extras mode, the UI and the API all go
through :meth:`UpscalerRegistry.upscale`. Model upscalers are loaded, cached and released by the
model store, in the same byte budget as every other model.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from pipelines.errors import UnsafeFormatError, ValidationError
from pipelines.imaging.image_ops import to_rgb
from pipelines.models.kinds import ModelType
from pipelines.models.store import ModelStore
from pipelines.progress import ProgressFn, ignore_progress
from pipelines.settings import Settings
from pipelines.upscalers.records import BUILTINS, DEFAULT_MODEL_SCALE, UpscalerKind, UpscalerRecord, scale_from_name
from pipelines.upscalers.sd_x4 import SD_X4_NAME, run_sd_x4
from pipelines.upscalers.tiling import StopFn, TileConfig, TileFn, upscale_tiled

log = logging.getLogger(__name__)

PIL_FILTERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}
MAX_PASSES = 3  # a model is applied at most this many times per upscale (A1111's limit)


class UpscalerRegistry:
    """Lists upscalers (built-ins, then the store's upscaler files, then SD x4 pipelines) and upscales images."""

    def __init__(self, settings: Settings, store: ModelStore) -> None:
        self.settings = settings
        self.store = store
        self.tiles = TileConfig(tile=settings.upscale_tile, overlap=settings.upscale_tile_overlap)
        self._lock = threading.Lock()
        self._scales: dict[str, float] = {}  # read from loaded models, by file path
        self._diffusion: dict[str, Callable[..., Image.Image]] = {}

    # ---- records ---------------------------------------------------------------------------
    def refresh(self) -> list[UpscalerRecord]:
        """Rescan every model folder (the store's refresh) and list the upscalers."""
        self.store.refresh()
        return self.records()

    def records(self) -> list[UpscalerRecord]:
        """The built-ins, the upscaler model files, then the SD x4 upscaler pipelines, as the store lists them now."""
        records: dict[str, UpscalerRecord] = {r.name: r for r in BUILTINS}
        with self._lock:
            scales = dict(self._scales)
        for model in self.store.records(ModelType.UPSCALER):
            known = scales.get(str(model.path))
            scale = known or scale_from_name(model.name) or DEFAULT_MODEL_SCALE
            records.setdefault(model.name, UpscalerRecord(model.name, UpscalerKind.SPANDREL, scale, path=model.path,
                                                          model_name=model.name, scale_known=known is not None,
                                                          model=model))
        diffusion = {}
        for index, model in enumerate(self.store.records(ModelType.SD_X4_UPSCALER)):
            name = SD_X4_NAME if index == 0 else f"{SD_X4_NAME} ({model.name})"
            records.setdefault(name, UpscalerRecord(name, UpscalerKind.DIFFUSION, 4, path=model.path,
                                                    model_name=model.name, scale_known=True, model=model))
            diffusion[name] = functools.partial(run_sd_x4, self.store, model)
        with self._lock:
            self._diffusion = diffusion
        return list(records.values())

    def names(self) -> list[str]:
        return [r.name for r in self.records()]

    def items(self) -> list[dict[str, Any]]:
        """Entries of ``/sdapi/v1/upscalers`` (A1111's ``UpscalerItem``)."""
        return [{"name": r.name, "model_name": r.model_name, "model_path": str(r.path) if r.path else None,
                 "model_url": None, "scale": r.scale} for r in self.records()]

    def default_name(self) -> str:
        """The first model upscaler, else Lanczos."""
        models = [r.name for r in self.records() if r.kind is UpscalerKind.SPANDREL]
        return models[0] if models else "Lanczos"

    def find(self, name: str, *, field: str = "upscaler") -> UpscalerRecord:
        """The record called ``name``; a ValidationError naming ``field`` (and some choices) otherwise."""
        records = {r.name: r for r in self.records()}
        if name in records:
            return records[name]
        pickled = {p.stem: p for p in self.store.registry.skipped_pickles(ModelType.UPSCALER)}.get(name)
        if pickled is not None:
            raise UnsafeFormatError(f"{field}: {pickled.name} is a pickled file; convert it to .safetensors or "
                                    "start Atelier with --allow-pickle to use it")
        names = list(records)
        listed = ", ".join(repr(n) for n in names[:8]) + (", ..." if len(names) > 8 else "")
        raise ValidationError(field, f"unknown upscaler {name!r}; available: {listed}")

    # ---- running -----------------------------------------------------------------------------
    def upscale(self, image: Image.Image, scale: float, name: str, *, on_tile: TileFn | None = None,
                should_stop: StopFn | None = None) -> Image.Image:
        """``image`` resized by ``scale`` to exactly ``round(w*scale) x round(h*scale)`` with upscaler ``name``.

        A model of native scale ``s`` runs as often as needed to reach the size (at most 3 times, once
        for ``scale == 1``), then Lanczos gives the exact size.
        """
        record = self.find(name)
        if not isinstance(scale, int | float) or isinstance(scale, bool) or not 0 < scale <= 16:
            raise ValidationError("scale", f"must be a number above 0 and at most 16, got {scale!r}")
        target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        if record.kind is UpscalerKind.PIL:
            return image.resize(target, PIL_FILTERS[record.name])
        if record.kind is UpscalerKind.NONE:
            return image if image.size == target else image.resize(target, Image.Resampling.LANCZOS)
        current = to_rgb(image, field="image")
        for index in range(MAX_PASSES):
            if current.width >= target[0] and current.height >= target[1] and (index > 0 or scale != 1):
                break
            before = current.size
            current = self._run_model(record, current, on_tile, should_stop)
            if current.size == before:
                break
        return current if current.size == target else current.resize(target, Image.Resampling.LANCZOS)

    def passes_needed(self, name: str, scale: float) -> int:
        """How many times upscaler ``name`` runs for ``scale`` (for progress totals)."""
        record = self.find(name)
        if record.kind in (UpscalerKind.NONE, UpscalerKind.PIL) or scale < 1:
            return 0
        if scale == 1 or record.scale <= 1:
            return 1
        return min(MAX_PASSES, max(1, math.ceil(math.log(scale) / math.log(record.scale) - 1e-9)))

    def _run_model(self, record: UpscalerRecord, image: Image.Image, on_tile: TileFn | None,
                   should_stop: StopFn | None) -> Image.Image:
        if record.kind is UpscalerKind.DIFFUSION:
            with self._lock:
                run = self._diffusion.get(record.name)
            if run is None:
                raise ValidationError("upscaler", f"{record.name} is not available any more; rescan the models")
            return run(image, on_tile=on_tile, should_stop=should_stop)
        assert record.model is not None
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        with self.store.use(record.model, model_type=ModelType.UPSCALER) as loaded:
            descriptor = loaded.model
            self._remember_scale(record, descriptor.scale)
            device, dtype = descriptor.device, descriptor.dtype

            def model(tile: torch.Tensor) -> torch.Tensor:
                return descriptor(tile.to(device=device, dtype=dtype))

            out = upscale_tiled(pixels, model, descriptor.scale, self.tiles, on_tile=on_tile, should_stop=should_stop)
        array = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        return Image.fromarray(array, mode="RGB")

    def _remember_scale(self, record: UpscalerRecord, scale: float) -> None:
        with self._lock:
            self._scales[str(record.path)] = scale

    def load(self, record: UpscalerRecord) -> Any:
        """Load a model upscaler into the store's cache now (its native scale becomes known); the descriptor."""
        assert record.model is not None
        loaded = self.store.load(record.model, model_type=ModelType.UPSCALER)
        self._remember_scale(record, loaded.model.scale)
        return loaded.model

    def loaded_names(self) -> list[str]:
        return [e.name for e in self.store.memory() if e.type in (ModelType.UPSCALER, ModelType.SD_X4_UPSCALER)]

    # ---- downloads ------------------------------------------------------------------------------
    def download(self, repo_id: str, filename: str, on_progress: ProgressFn = ignore_progress) -> UpscalerRecord:
        """Fetch one upscaler file from a Hub repo into ``models/ESRGAN`` (byte progress), then list it."""
        model = self.store.download(repo_id, on_progress, filename=filename, model_type=ModelType.UPSCALER)
        return self.find(model.name, field="filename")
