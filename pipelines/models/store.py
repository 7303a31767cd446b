"""The model store: one façade over records, install and load/cache, for every kind of model.

- records (:class:`~pipelines.models.registry.ModelRegistry`): what exists, on disk and in the HF cache;
- install (:class:`~pipelines.models.install.Installer`): getting files from the Hub, once;
- load (:mod:`pipelines.models.loaders`) and cache (:class:`~pipelines.models.cache.ModelCache`):
  what is in memory, in bytes, on which tier.

``with store.use(record) as loaded:`` holds any model for one job. The store knows nothing of the
UI's selection or of what the models are used for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from pipelines.errors import ModelNotFoundError, UnsupportedModelError
from pipelines.imaging.preview import fit_previewer
from pipelines.models import loaders
from pipelines.models.architecture import Architecture, detect_folder
from pipelines.models.attention import OptimizationReport, apply_optimizations
from pipelines.models.cache import ModelCache
from pipelines.models.compile import COMPILED_SIZES, apply_speed_settings
from pipelines.models.device import resolve_device, resolve_precision
from pipelines.models.hashing import HashCache
from pipelines.models.hub import HubClient
from pipelines.models.install import Installer
from pipelines.models.integrity import check_on_disk
from pipelines.models.kinds import ModelType
from pipelines.models.loaded import LoadedModel
from pipelines.models.memory import fmt, plan_memory, ram_total_bytes, vram_free_total
from pipelines.models.memory_budget import BudgetPolicy, MemoryProbe, SystemMemory, Tier, default_limits
from pipelines.models.model_hashes import ModelHashes
from pipelines.models.prediction import apply_prediction, probe_unet
from pipelines.models.refs import ModelRecord, SourceKind
from pipelines.models.registry import ModelRegistry
from pipelines.models.scan import folder_size
from pipelines.models.spandrel_import import SpandrelLoader
from pipelines.models.taesd_files import load_taesd
from pipelines.models.weights import load_descriptor
from pipelines.progress import ProgressFn, ignore_progress
from pipelines.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["LoadedModel", "MemoryEntry", "ModelStore"]


@dataclass(frozen=True)
class MemoryEntry:
    """One model in memory, for ``/sdapi/v1/memory``, the Models tab and the checkpoint bar."""

    key: str
    name: str
    type: ModelType
    size_bytes: int
    tier: Tier
    in_use: bool


class ModelStore:
    """Finds, downloads, loads, caches and releases checkpoints, VAEs, LoRAs, embeddings and upscalers."""

    def __init__(self, settings: Settings, *, memory: MemoryProbe | None = None, two_tier: bool | None = None,
                 hashes: HashCache | None = None) -> None:
        """``memory`` and ``two_tier`` default to the machine's memory and "two tiers on an accelerator";
        tests pass their own to drive the tier logic on a CPU (and ``hashes``, a HashCache with their hasher)."""
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.precision = resolve_precision(self.device, settings)
        self.dtype = self.precision.dtype
        log.info("precision: %s on %s", self.precision.describe(), self.device)
        self.registry = ModelRegistry(settings)
        self.hub = HubClient(settings)
        self.installer = Installer(settings, self.hub)
        self.hashes = hashes or HashCache(settings.hash_cache_file)
        self._spandrel = SpandrelLoader()
        two_tier = self.device.type != "cpu" if two_tier is None else two_tier
        device_cap = self._vram_cap() if self.device.type == "cuda" else self._ram_cap()
        limits = default_limits(two_tier=two_tier, device_cap=device_cap, ram_cap=self._ram_cap())
        self.cache = ModelCache(BudgetPolicy(memory or SystemMemory(self.device), limits), device=self.device,
                                park_device=torch.device("cpu") if two_tier else None)
        self.model_hashes = ModelHashes(self.hashes, self.registry, self.cache, no_hashing=settings.no_hashing)
        self._load_lock = threading.Lock()
        self.registry.refresh()

    def _ram_cap(self) -> int:
        if self.settings.ram_budget_bytes is not None:
            return self.settings.ram_budget_bytes
        return int(ram_total_bytes() * self.settings.ram_budget_fraction)

    def _vram_cap(self) -> int | None:
        if self.settings.vram_budget_bytes is not None or self.device.type == "cpu":
            return self.settings.vram_budget_bytes
        total = vram_free_total(self.device)[1]
        return int(total * self.settings.vram_budget_fraction) if total else None

    # ---- records ---------------------------------------------------------------------------
    def refresh(self) -> list[ModelRecord]:
        """Rescan every kind of model (A1111's refresh buttons all land here)."""
        return self.registry.refresh()

    def records(self, model_type: ModelType | None = None) -> list[ModelRecord]:
        return self.registry.records(model_type)

    def checkpoints(self, *, refresh: bool = False) -> list[ModelRecord]:
        """The checkpoints (after rescanning every kind when ``refresh``)."""
        if refresh:
            self.registry.refresh()
        return self.registry.records(ModelType.CHECKPOINT)

    def find(self, query: str, model_type: ModelType = ModelType.CHECKPOINT) -> ModelRecord:
        return self.registry.find(query, model_type)

    def resolve(self, target: ModelRecord | str, model_type: ModelType = ModelType.CHECKPOINT) -> ModelRecord:
        """A record for ``target``: the record itself, a known name, or (checkpoints) a Hub repo id to fetch."""
        if isinstance(target, ModelRecord):
            return target
        try:
            return self.registry.find(target, model_type)
        except ModelNotFoundError:
            if model_type is ModelType.CHECKPOINT and target.count("/") == 1 and not Path(target).exists():
                return self.registry.hub_record(target)
            raise

    # ---- loading -------------------------------------------------------------------------
    @contextmanager
    def use(self, target: ModelRecord | str, on_progress: ProgressFn = ignore_progress, *,
            model_type: ModelType = ModelType.CHECKPOINT,
            config: Mapping[str, Any] | None = None) -> Iterator[LoadedModel]:
        """Hold a model for one job, loading it or bringing it back as needed; never evicted until the block ends.

        ``config``: the shape a single-file VAE is loaded with (the checkpoint's own VAE config).
        """
        record = self.resolve(target, model_type)
        held = None
        while held is None:  # another thread may evict it between load and lock
            loaded = self._ensure_loaded(record, on_progress, config)
            held = self.cache.acquire(loaded.record.ref.key)
        try:
            yield held
        finally:
            self.cache.release(held.record.ref.key)

    def load(self, target: ModelRecord | str, on_progress: ProgressFn = ignore_progress, *,
             model_type: ModelType = ModelType.CHECKPOINT) -> LoadedModel:
        """Load a model now (downloading it if needed) without holding it."""
        with self.use(target, on_progress, model_type=model_type) as loaded:
            return loaded

    def loaded(self, target: ModelRecord | str, model_type: ModelType = ModelType.CHECKPOINT) -> LoadedModel | None:
        """The model if it is in memory now (on any tier), else None; never loads."""
        try:
            return self.cache.get(self.resolve(target, model_type).ref.key)
        except ModelNotFoundError:
            return None

    def _ensure_loaded(self, record: ModelRecord, on_progress: ProgressFn,
                       config: Mapping[str, Any] | None = None) -> LoadedModel:
        cached = self.cache.get(record.ref.key)
        if cached is not None:
            return cached
        with self._load_lock:
            cached = self.cache.get(record.ref.key)
            if cached is not None:
                return cached
            record = self._install(record, on_progress)
            record, hashing = self.model_hashes.start_checkpoint(record)  # read alongside the load, not before
            self.registry.update(record)
            self.cache.make_room(record.size_bytes, Tier.RAM if record.type.small and self.cache.two_tier
                                 else Tier.DEVICE)
            loaded = self._build(record, config)
            self.cache.put(record.ref.key, loaded, tier=Tier.RAM if not loaded.wants_device else Tier.DEVICE)
            if hashing is not None:  # now in the cache: the hash, when done, reaches its record there too
                self.model_hashes.follow(record.ref.key, hashing)
            return loaded

    def _build(self, record: ModelRecord, config: Mapping[str, Any] | None = None) -> LoadedModel:
        """Read ``record``'s files into memory, on the device it runs on."""
        allow = self.settings.allow_pickle
        kind = record.type
        if kind is ModelType.CHECKPOINT:
            loaded = self._build_pipeline(record, loaders.load_pipeline(record, dtype=self.dtype,
                                                                        config_dir=self._config_dir(record),
                                                                        allow_pickle=allow))
            loaded.record = self._settle_prediction(loaded)
            return loaded
        if kind is ModelType.SD_X4_UPSCALER:
            return self._build_pipeline(record, loaders.load_sd_x4(record, dtype=self.dtype, allow_pickle=allow))
        if kind is ModelType.IMAGE_VARIATION:
            return self._build_pipeline(record, loaders.load_image_variation(record, dtype=self.dtype,
                                                                             allow_pickle=allow))
        if kind is ModelType.VAE:
            vae = loaders.load_vae(record, dtype=self.dtype, config=config, allow_pickle=allow).to(self.device)
            return LoadedModel(record, vae, self.device, self.dtype)
        if kind is ModelType.TAESD:
            tiny = load_taesd(record, dtype=self.dtype, allow_pickle=allow).to(self.device)
            return LoadedModel(record, tiny, self.device, self.dtype)
        if kind is ModelType.UPSCALER:
            assert record.path is not None
            descriptor = load_descriptor(record.path, self._spandrel.get(), device=self.device, dtype=self.dtype,
                                         allow_pickle=allow)
            return LoadedModel(record, descriptor, descriptor.device, descriptor.dtype)
        tensors = loaders.load_tensors(record, allow_pickle=allow)  # LoRA, embedding: kept in RAM
        return LoadedModel(record, tensors, torch.device("cpu"), torch.float32)

    def _config_dir(self, record: ModelRecord) -> Path | None:
        if record.ref.kind is not SourceKind.SINGLE_FILE:
            return None
        assert record.kind is not None
        return record.config_path or self.hub.config_folder(self.settings.reference_configs[record.kind.reference_key])

    def _build_pipeline(self, record: ModelRecord, pipe: Any) -> LoadedModel:
        loaded = LoadedModel(record, pipe, self.device, self.dtype)
        size = sum(loaded.storages().values())
        plan = plan_memory(self.settings.memory_mode, self.device, size)
        if plan.mode == "normal":
            pipe.to(self.device)
        report = apply_optimizations(pipe, attention=self.settings.attention, plan=plan, device=self.device)
        if self.settings.compile and getattr(pipe, "vae", None) is not None:  # the live preview's fit decodes a
            loaded.extras["previewer"] = fit_previewer(pipe.vae)  # small latent: eager now, not compiled at its size
        speed = apply_speed_settings(pipe, channels_last=self.settings.channels_last, compile=self.settings.compile,
                                     mode=self.settings.compile_mode, backend=self.settings.compile_backend,
                                     device=self.device,
                                     plain_attention=report.attention == "PyTorch SDPA" and not report.savings)
        report = OptimizationReport(report.attention, report.savings + speed.applied, report.notes + speed.notes)
        if speed.compiled:
            loaded.extras[COMPILED_SIZES] = set()
        log.info("model %s ready on %s (%s, %s): %s", record.title, self.device, self.dtype, fmt(size),
                 report.summary())
        loaded.plan, loaded.optimizations = plan, report
        return loaded

    def _settle_prediction(self, loaded: LoadedModel) -> ModelRecord:
        """A single file's epsilon / v decision (:mod:`pipelines.models.prediction`) applied to its scheduler and
        kept on its record, so a file's UNet is probed once, not on every load."""
        record = loaded.record
        if record.ref.kind is not SourceKind.SINGLE_FILE or record.kind is None:
            return record  # a diffusers folder's own scheduler config is the model's statement
        decision = record.prediction
        if decision is None and record.kind.architecture is Architecture.SD2:
            decision = probe_unet(loaded.pipeline.unet, self.device)
        if decision is None:
            return record  # SD 1.x / SDXL without a marker: epsilon, as their configs say
        apply_prediction(loaded.pipeline, decision.prediction)
        log.info("%s: %s", record.name, decision.describe())
        if decision != record.prediction:
            record = replace(record, prediction=decision)
            self.registry.update(record)
        return record

    def _install(self, record: ModelRecord, on_progress: ProgressFn) -> ModelRecord:
        """Make sure the files are on disk and whole; download Hub repos that are not cached (or no longer are)."""
        if record.ref.kind is SourceKind.HUB and (not record.installed or record.path is None
                                                  or not record.path.exists()):
            snapshot = self.hub.cached_snapshot(record.ref.location)
            if snapshot is None or not (snapshot / "model_index.json").exists():
                snapshot = self.installer.download_repo(record.ref.location, prefer_fp16=self.dtype == torch.float16,
                                                        on_progress=on_progress)
            kind = detect_folder(snapshot, name_hint=record.ref.location)
            record = replace(record, installed=True, path=snapshot, kind=kind, size_bytes=folder_size(snapshot))
        check_on_disk(record)  # deleted or damaged since it was listed: say so before diffusers meets it
        if record.problem:
            raise UnsupportedModelError(record.problem)
        if record.type is ModelType.CHECKPOINT and record.kind is None:
            raise UnsupportedModelError(f"{record.name}: could not tell what kind of model this is")
        if record.kind is not None and record.kind.upscaler and record.type is ModelType.CHECKPOINT:
            raise UnsupportedModelError(f"{record.name} is the SD x4 upscaler: pick it as an upscaler "
                                        "(Extras, hires fix), not as a checkpoint")
        return record

    # ---- releasing ------------------------------------------------------------------------------
    def unload(self, key: str | None = None) -> bool:
        """Drop one model (by cache key) or every model not in use (A1111's unload-checkpoint)."""
        if key is None:
            self.cache.clear()
            return True
        return self.cache.remove(key)

    def memory(self) -> list[MemoryEntry]:
        """What is in memory: each model's name, kind, bytes and tier."""
        out = []
        for info in self.cache.infos():
            record = self.registry.get(info.key)
            loaded = self.cache.get(info.key)
            record = record or (loaded.record if loaded is not None else None)
            name = record.name if record is not None else info.key
            model_type = record.type if record is not None else ModelType.CHECKPOINT
            out.append(MemoryEntry(info.key, name, model_type, info.size_bytes, info.tier, info.in_use))
        return out

    # ---- hashes (pipelines/models/model_hashes.py) -------------------------------------------------
    def hashed(self, record: ModelRecord) -> ModelRecord:
        """``record`` with its A1111 hashes (sha256; the addnet hash for LoRA files), computed once and cached."""
        return self.model_hashes.hashed(record)

    def start_hashing(self, record: ModelRecord) -> None:
        """Begin :meth:`hashed`'s hashes in the background, before loading the model, so they read its file together."""
        self.model_hashes.start(record)

    def known_sha256(self, record: ModelRecord) -> str | None:
        """The model's sha256 if it was ever computed (this run or ``cache.json``); never hashes."""
        return self.model_hashes.known_sha256(record)

    def model_sha256(self, record: ModelRecord) -> str | None:
        """A loaded checkpoint's sha256 for an image's infotext, waiting for the hash begun with its load (bounded);
        None with ``--no-hashing`` or when hashing failed."""
        return self.model_hashes.checkpoint_sha256(record)

    # ---- install ----------------------------------------------------------------------------------
    def download(self, repo_id: str, on_progress: ProgressFn = ignore_progress, *, filename: str | None = None,
                 model_type: ModelType = ModelType.CHECKPOINT) -> ModelRecord:
        """Fetch a Hub repo (into the HF cache) or one file of it (into the kind's folder), then list it."""
        fp16 = self.dtype == torch.float16
        if filename is None and model_type in (ModelType.VAE, ModelType.TAESD):  # a diffusers VAE repo
            self.installer.download_model_folder(repo_id, prefer_fp16=fp16, on_progress=on_progress)
            self.registry.refresh()
            other = ModelType.TAESD if model_type is ModelType.VAE else ModelType.VAE  # an AutoencoderTiny is a TAESD
            found = [r for t in (model_type, other) for r in self.registry.records(t) if r.ref.location == repo_id]
            return found[0] if found else self.registry.find(repo_id, model_type)
        if filename is None:
            path = self.installer.download_repo(repo_id, prefer_fp16=fp16, on_progress=on_progress)
            self.registry.refresh()
            for listed in self.registry.records(ModelType.IMAGE_VARIATION):  # listed apart from the checkpoints
                if listed.ref.location == repo_id:
                    return listed
            return self.registry.find(repo_id, model_type) if path else self.registry.hub_record(repo_id)
        folder = self.registry.folders(model_type)[0]
        path = self.installer.download_file(repo_id, filename, folder, model_type, on_progress)
        self.registry.refresh()
        return self.registry.find(path.stem, model_type)

    def free_bytes(self, tier: Tier = Tier.DEVICE) -> int:
        """Bytes free on ``tier`` now, as the cache's memory probe reads them (tests give the store their own)."""
        return self.cache.policy.probe.free_bytes(tier)

    def budgets(self) -> list[str]:
        """How each tier's budget stands now, with the numbers it comes from."""
        tiers = (Tier.DEVICE, Tier.RAM) if self.cache.two_tier else (Tier.DEVICE,)
        return [self.cache.policy.budget(t, self.cache.used_bytes(t)).explain() for t in tiers]

    # ---- status -----------------------------------------------------------------------------------
    def status(self, loaded: LoadedModel | None = None) -> str:
        """One line for the UI: device, dtype, attention, memory savings and what the cache holds."""
        base = f"{self.device.type} · {str(self.dtype).replace('torch.', '')}"
        held = f"cache {fmt(self.cache.used_bytes(Tier.DEVICE))} on {self.device.type}"
        if self.cache.two_tier:
            held += f", {fmt(self.cache.used_bytes(Tier.RAM))} parked in RAM"
        if loaded is None:
            return f"{base} · {held}"
        tier = self.cache.tier_of(loaded.record.ref.key)
        where = f"{fmt(sum(loaded.storages().values()))} in {tier}" if tier else "not in memory"
        return (f"{base} · {loaded.optimizations.summary()} · memory: {loaded.plan.mode} ({loaded.plan.reason}) · "
                f"{where} · {held}")
