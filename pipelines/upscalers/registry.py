"""The upscaler registry: what upscalers exist, loading them (small LRU cache) and running them.

``ModelManager.upscalers`` is the one instance; hires fix, the extras mode, the UI and the API all go
through :meth:`UpscalerRegistry.upscale`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pipelines.errors import UnsafeFormatError, ValidationError
from pipelines.image_ops import to_rgb
from pipelines.progress import ProgressFn, ignore_progress
from pipelines.settings import Settings
from pipelines.upscalers.model_files import load_descriptor
from pipelines.upscalers.records import BUILTINS, UpscalerKind, UpscalerRecord, scan_model_files
from pipelines.upscalers.spandrel_import import SpandrelLoader
from pipelines.upscalers.tiling import StopFn, TileConfig, TileFn, upscale_tiled

log = logging.getLogger(__name__)

PIL_FILTERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}
MAX_PASSES = 3  # a model is applied at most this many times per upscale (A1111's limit)


@dataclass(frozen=True)
class DiffusionUpscaler:
    """A diffusion upscaler entry and the function that runs it (``run(image, on_tile=, should_stop=)``)."""

    record: UpscalerRecord
    run: Callable[..., Image.Image]


class UpscalerRegistry:
    """Lists upscalers, keeps up to ``cache_size`` loaded models, and upscales images."""

    def __init__(self, settings: Settings, *, device: torch.device, dtype: torch.dtype, cache_size: int = 2,
                 diffusion_upscalers: Callable[[], list[DiffusionUpscaler]] | None = None) -> None:
        self.settings = settings
        self.device, self.dtype = device, dtype
        self.cache_size = cache_size
        self.tiles = TileConfig(tile=settings.upscale_tile, overlap=settings.upscale_tile_overlap)
        self._spandrel = SpandrelLoader()
        self._lock = threading.Lock()
        self._records: dict[str, UpscalerRecord] = {}
        self._pickled: dict[str, Path] = {}
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._diffusion_source = diffusion_upscalers  # the SD x4 upscaler pipelines the model registry found
        self._diffusion: dict[str, DiffusionUpscaler] = {}
        self.refresh()

    # ---- records ---------------------------------------------------------------------------
    def refresh(self) -> list[UpscalerRecord]:
        """Rescan the upscaler folders; models already loaded stay cached."""
        found, skipped = scan_model_files(self.settings.upscaler_dirs, allow_pickle=self.settings.allow_pickle)
        diffusion = self._diffusion_source() if self._diffusion_source else []
        with self._lock:
            old = self._records
            records = {r.name: r for r in BUILTINS}
            for record in found:
                previous = old.get(record.name)
                if previous is not None and previous.path == record.path and previous.scale_known:
                    record = previous
                records.setdefault(record.name, record)
            for entry in diffusion:
                records.setdefault(entry.record.name, entry.record)
            self._records = records
            self._diffusion = {entry.record.name: entry for entry in diffusion}
            self._pickled = {p.stem: p for p in skipped}
        return self.records()

    def records(self) -> list[UpscalerRecord]:
        with self._lock:
            return list(self._records.values())

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
        with self._lock:
            record = self._records.get(name)
            pickled = self._pickled.get(name)
        if record is not None:
            return record
        if pickled is not None:
            raise UnsafeFormatError(f"{field}: {pickled.name} is a pickled file; convert it to .safetensors or "
                                    "start Atelier with --allow-pickle to use it")
        names = self.names()
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
                entry = self._diffusion.get(record.name)
            if entry is None:
                raise ValidationError("upscaler", f"{record.name} is not available any more; rescan the models")
            return entry.run(image, on_tile=on_tile, should_stop=should_stop)
        descriptor = self.load(record)
        device, dtype = descriptor.device, descriptor.dtype
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]

        def model(tile: torch.Tensor) -> torch.Tensor:
            return descriptor(tile.to(device=device, dtype=dtype))

        out = upscale_tiled(pixels, model, descriptor.scale, self.tiles, on_tile=on_tile, should_stop=should_stop)
        array = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        return Image.fromarray(array, mode="RGB")

    def load(self, record: UpscalerRecord) -> Any:
        """The spandrel descriptor of ``record``, from the LRU cache or disk."""
        assert record.path is not None
        key = str(record.path.resolve())
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        descriptor = load_descriptor(record.path, self._spandrel.get(), device=self.device, dtype=self.dtype,
                                     allow_pickle=self.settings.allow_pickle)
        with self._lock:
            self._models[key] = descriptor
            while len(self._models) > self.cache_size:
                evicted, _ = self._models.popitem(last=False)
                log.info("upscaler cache: evicted %s", Path(evicted).name)
            if record.name in self._records and not record.scale_known:
                self._records[record.name] = record.with_scale(descriptor.scale)
        return descriptor

    def loaded_names(self) -> list[str]:
        with self._lock:
            return [Path(k).stem for k in self._models]

    def unload(self) -> None:
        with self._lock:
            self._models.clear()

    # ---- downloads ------------------------------------------------------------------------------
    def download(self, repo_id: str, filename: str, on_progress: ProgressFn = ignore_progress) -> UpscalerRecord:
        """Fetch one upscaler file from a Hub repo into ``models/ESRGAN`` (byte progress), then list it."""
        from pipelines.upscalers.download import download_file

        path = download_file(self.settings, repo_id, filename, self.settings.upscaler_dirs[0], on_progress)
        self.refresh()
        return self.find(path.stem, field="filename")
