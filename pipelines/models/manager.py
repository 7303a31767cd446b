"""The model manager façade every tab, the API and the CLI go through.

Records (registry), getting files (hub), building pipelines (loaders) and
keeping them in memory (cache) stay separate; this class only sequences them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from pipelines.errors import ModelNotFoundError, UnsupportedModelError
from pipelines.hashing import HashCache
from pipelines.models.architecture import detect_folder
from pipelines.models.attention import OptimizationReport, apply_optimizations
from pipelines.models.cache import ModelCache
from pipelines.models.device import resolve_device, resolve_dtype
from pipelines.models.hub import HubClient
from pipelines.models.loaders import load_pipeline
from pipelines.models.memory import MemoryPlan, fmt, pipeline_bytes, plan_memory, ram_total_bytes, vram_free_total
from pipelines.models.refs import ModelRecord, SourceKind
from pipelines.models.registry import ModelRegistry, folder_size
from pipelines.progress import ProgressFn, ignore_progress
from pipelines.settings import Settings
from pipelines.upscalers.registry import DiffusionUpscaler, UpscalerRegistry
from pipelines.upscalers.sd_x4 import sd_x4_upscalers

log = logging.getLogger(__name__)
PipelineLoader = Callable[..., Any]  # (record, *, dtype, config_dir, allow_pickle) -> a diffusers pipeline


@dataclass
class LoadedModel:
    """A pipeline in memory with what is known about it."""

    record: ModelRecord
    pipeline: Any  # a diffusers DiffusionPipeline
    device: torch.device
    dtype: torch.dtype
    plan: MemoryPlan
    optimizations: OptimizationReport
    extras: dict[str, Any] = field(default_factory=dict)  # per-model derived data (e.g. preview decoder)


class ModelManager:
    """Lists, downloads, loads, caches and swaps checkpoints."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings)
        self.hub = HubClient(settings)
        self.hashes = HashCache(settings.hash_cache_file)
        self.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(self.device, settings)
        self.cache = ModelCache(self._budget_bytes())
        self._load_lock = threading.Lock()
        self._selected: str | None = settings.initial_model
        self.registry.refresh()
        self.upscalers = UpscalerRegistry(settings, device=self.device, dtype=self.dtype,
                                          diffusion_upscalers=self._diffusion_upscalers)

    def _budget_bytes(self) -> int:
        if self.device.type == "cuda":
            if self.settings.vram_budget_bytes is not None:
                return self.settings.vram_budget_bytes
            return int(vram_free_total(self.device)[1] * self.settings.vram_budget_fraction)
        if self.settings.ram_budget_bytes is not None:
            return self.settings.ram_budget_bytes
        return int(ram_total_bytes() * self.settings.ram_budget_fraction)

    # ---- records -------------------------------------------------------------------------
    def _diffusion_upscalers(self) -> list[DiffusionUpscaler]:
        """The SD x4 upscaler pipelines the registry found, as entries of the upscaler list."""
        return sd_x4_upscalers(self, self.registry.upscaler_records())

    def list_models(self, *, refresh: bool = False) -> list[ModelRecord]:
        if not refresh:
            return self.registry.records()
        records = self.registry.refresh()
        self.upscalers.refresh()  # SD x4 upscaler folders are found by this scan
        return records

    @property
    def selected(self) -> str:
        """The checkpoint the UI's selector shows (the default model until one is chosen)."""
        if self._selected:
            return self._selected
        installed = [r for r in self.registry.records() if r.installed and not r.problem]
        return installed[0].name if installed else self.settings.default_model

    def select(self, query: str, on_progress: ProgressFn = ignore_progress) -> LoadedModel:
        """Make ``query`` the current checkpoint, loading it now (downloading if needed)."""
        loaded = self._ensure_loaded(self._find_or_hub(query), on_progress)
        self._selected = loaded.record.name
        return loaded

    def _find_or_hub(self, query: str) -> ModelRecord:
        try:
            return self.registry.find(query)
        except ModelNotFoundError:
            if query.count("/") == 1 and not Path(query).exists():
                return self.registry.hub_record(query)
            raise

    # ---- loading -------------------------------------------------------------------------
    @contextmanager
    def use(self, query: str | None = None, on_progress: ProgressFn = ignore_progress) -> Iterator[LoadedModel]:
        """Hold a model for one job; it cannot be evicted until the block ends."""
        with self.use_record(self._find_or_hub(query or self.selected), on_progress) as held:
            yield held

    @contextmanager
    def use_record(self, record: ModelRecord, on_progress: ProgressFn = ignore_progress, *,
                   loader: PipelineLoader = load_pipeline) -> Iterator[LoadedModel]:
        """Hold ``record`` for one job, loading it with ``loader`` (e.g. the SD x4 upscaler's) when needed."""
        held = None
        while held is None:  # another thread may evict it between load and lock
            loaded = self._ensure_loaded(record, on_progress, loader)
            held = self.cache.acquire(loaded.record.ref.key)
        try:
            yield held
        finally:
            self.cache.release(held.record.ref.key)

    def loaded(self, query: str) -> LoadedModel | None:
        """The model if it is in memory now, else None (never loads)."""
        try:
            return self.cache.get(self._find_or_hub(query).ref.key)
        except ModelNotFoundError:
            return None

    def _ensure_loaded(self, record: ModelRecord, on_progress: ProgressFn,
                       loader: PipelineLoader = load_pipeline) -> LoadedModel:
        cached = self.cache.get(record.ref.key)
        if cached is not None:
            return cached
        with self._load_lock:
            cached = self.cache.get(record.ref.key)
            if cached is not None:
                return cached
            record = self._install(record, on_progress)
            if record.kind is not None and record.kind.upscaler and loader is load_pipeline:
                raise UnsupportedModelError(f"{record.name} is the SD x4 upscaler: pick it as an upscaler "
                                            "(Extras, hires fix), not as a checkpoint")
            record = self._with_hash(record)
            self.registry.update(record)
            config_dir = None
            if record.ref.kind is SourceKind.SINGLE_FILE:
                config_dir = record.config_path or self.hub.config_folder(
                    self.settings.reference_configs[record.kind.reference_key])
            self.cache.make_room(record.size_bytes)
            pipe = loader(record, dtype=self.dtype, config_dir=config_dir, allow_pickle=self.settings.allow_pickle)
            size = pipeline_bytes(pipe.components)
            plan = plan_memory(self.settings.memory_mode, self.device, size)
            if plan.mode == "normal":
                pipe.to(self.device)
            report = apply_optimizations(pipe, attention=self.settings.attention, plan=plan, device=self.device)
            loaded = LoadedModel(record, pipe, self.device, self.dtype, plan, report)
            log.info("model %s ready on %s (%s, %s): %s", record.title, self.device, self.dtype, fmt(size),
                     report.summary())
            self.cache.put(record.ref.key, loaded, size)
            return loaded

    def _install(self, record: ModelRecord, on_progress: ProgressFn) -> ModelRecord:
        """Make sure the files are on disk; download Hub repos that are not cached."""
        if record.ref.kind is SourceKind.HUB and (not record.installed or record.path is None):
            snapshot = self.hub.cached_snapshot(record.ref.location)
            if snapshot is None or not (snapshot / "model_index.json").exists():
                snapshot = self.hub.download_model(record.ref.location, prefer_fp16=self.dtype == torch.float16,
                                                   allow_pickle=self.settings.allow_pickle, on_progress=on_progress)
            kind = detect_folder(snapshot, name_hint=record.ref.location)
            size = folder_size(snapshot)
            record = replace(record, installed=True, path=snapshot, kind=kind, size_bytes=size)
        if record.problem:
            raise UnsupportedModelError(record.problem)
        if record.kind is None:
            raise UnsupportedModelError(f"{record.name}: could not tell what kind of model this is")
        return record

    @staticmethod
    def _hashed_file(record: ModelRecord) -> Path | None:
        """The file whose sha256 is the model's hash: the checkpoint, or a folder's UNet weights."""
        if record.path is None:
            return None
        if record.ref.kind is SourceKind.SINGLE_FILE:
            return record.path
        for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
            weights = record.path / "unet" / name
            if weights.exists():
                return weights.resolve()
        return None

    def _with_hash(self, record: ModelRecord) -> ModelRecord:
        if record.sha256:
            return record
        path = self._hashed_file(record)
        return record.with_hash(self.hashes.sha256(path)) if path else record

    def known_sha256(self, record: ModelRecord) -> str | None:
        """The model's sha256 if it was ever computed (this run or ``cache.json``); never hashes."""
        if record.sha256:
            return record.sha256
        path = self._hashed_file(record)
        return self.hashes.cached(path) if path else None

    def download(self, repo_id: str, on_progress: ProgressFn = ignore_progress) -> ModelRecord:
        """Fetch a Hub repo into the cache without loading it."""
        path = self.hub.download_model(repo_id, prefer_fp16=self.dtype == torch.float16,
                                       allow_pickle=self.settings.allow_pickle, on_progress=on_progress)
        self.registry.refresh()
        return self.registry.find(repo_id) if path else self.registry.hub_record(repo_id)

    def unload(self) -> None:
        """Drop every model that is not in use (A1111's unload-checkpoint)."""
        self.cache.clear()

    def status(self, loaded: LoadedModel | None = None) -> str:
        """One line for the UI: device, dtype, attention and memory savings."""
        base = f"{self.device.type} · {str(self.dtype).replace('torch.', '')}"
        if loaded is None:
            return f"{base} · cache {fmt(self.cache.used_bytes)} of {fmt(self.cache.budget_bytes)}"
        return f"{base} · {loaded.optimizations.summary()} · memory: {loaded.plan.mode} ({loaded.plan.reason})"
