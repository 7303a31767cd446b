"""Records: which models exist (checkpoint folders, the HF cache, the default model).

Scanning reads directory listings, JSON configs and safetensors headers only;
hashes are filled in when a model is first loaded, as A1111 does.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from pipelines.errors import AtelierError, ModelNotFoundError, UnsupportedModelError
from pipelines.models.architecture import detect_folder, detect_single_file
from pipelines.models.refs import ModelRecord, ModelRef, SourceKind
from pipelines.settings import Settings

log = logging.getLogger(__name__)
_HASH_SUFFIX = re.compile(r"^(.*?)\s*\[([0-9a-fA-F]{8,64})\]$")
_SINGLE_FILE_SUFFIXES = (".safetensors",)
_PICKLE_SUFFIXES = (".ckpt", ".pt", ".bin")
SIDECAR_SUFFIX = ".config"  # foo.safetensors + foo.config/ (diffusers configs, no weights)


def walk(folder: Path) -> list[Path]:
    """Every path below ``folder``, following symlinked folders (users link big model
    folders in from other disks) without looping on a link back up the tree."""
    out: list[Path] = []
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        base = Path(root)
        out += [base / d for d in dirs] + [base / f for f in files]
    return sorted(out)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in walk(path) if f.is_file())


def _record_for_file(path: Path, allow_pickle: bool) -> ModelRecord | None:
    ref = ModelRef(SourceKind.SINGLE_FILE, str(path.resolve()))
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    base = dict(ref=ref, name=path.stem, path=path, size_bytes=path.stat().st_size,
                config_path=sidecar if sidecar.is_dir() else None)
    if path.suffix in _PICKLE_SUFFIXES:
        if not allow_pickle:
            log.info("skipping pickled checkpoint %s (start with --allow-pickle to load it)", path.name)
            return None
        return ModelRecord(**base, problem=None)
    try:
        return ModelRecord(**base, kind=detect_single_file(path))
    except AtelierError as exc:
        return ModelRecord(**base, problem=str(exc))
    except Exception as exc:  # a truncated or foreign file must not break listing
        return ModelRecord(**base, problem=f"{path.name}: unreadable checkpoint ({exc})")


def _record_for_folder(path: Path) -> ModelRecord:
    ref = ModelRef(SourceKind.FOLDER, str(path.resolve()))
    try:
        kind = detect_folder(path)
        return ModelRecord(ref=ref, name=path.name, kind=kind, path=path, size_bytes=folder_size(path))
    except AtelierError as exc:
        return ModelRecord(ref=ref, name=path.name, path=path, problem=str(exc))


def _blob_sha256(snapshot: Path) -> str | None:
    """In the HF cache a weight file is a link to a blob named by its sha256."""
    for rel in ("unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors"):
        link = snapshot / rel
        if link.exists():
            name = link.resolve().name
            if re.fullmatch(r"[0-9a-f]{64}", name):
                return name
    return None


def _main_snapshot(repo_path: Path) -> Path | None:
    ref_file = repo_path / "refs" / "main"
    if ref_file.is_file():
        snap = repo_path / "snapshots" / ref_file.read_text().strip()
        if snap.is_dir():
            return snap
    snaps = sorted((repo_path / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime)
    return snaps[-1] if snaps else None


class ModelRegistry:
    """What models exist; rescanned on :meth:`refresh`, otherwise answered from memory."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._records: dict[str, ModelRecord] = {}

    def hub_cache_dir(self) -> Path:
        if self._settings.hf_cache_dir is not None:
            return self._settings.hf_cache_dir
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)

    def refresh(self) -> list[ModelRecord]:
        found: dict[str, ModelRecord] = {}
        for folder in self._settings.checkpoint_dirs:
            for record in self._scan_checkpoint_dir(folder):
                found[record.ref.key] = record
        for record in self._scan_hub_cache():
            found[record.ref.key] = record
        default_ref = ModelRef(SourceKind.HUB, self._settings.default_model)
        if default_ref.key not in found:
            found[default_ref.key] = ModelRecord(ref=default_ref, name=self._settings.default_model, installed=False)
        with self._lock:
            # keep hashes already computed for unchanged entries
            for key, record in found.items():
                old = self._records.get(key)
                if old and old.sha256 and not record.sha256 and old.size_bytes == record.size_bytes:
                    found[key] = record.with_hash(old.sha256)
            self._records = found
        log.info("model registry: %d models", len(found))
        return self.records()

    def records(self) -> list[ModelRecord]:
        """Checkpoints (the SD x4 upscaler is not one: see :meth:`upscaler_records`)."""
        with self._lock:
            return sorted((r for r in self._records.values() if not (r.kind and r.kind.upscaler)),
                          key=lambda r: (not r.installed, r.name.lower()))

    def upscaler_records(self) -> list[ModelRecord]:
        """Diffusion upscaler pipelines (StableDiffusionUpscalePipeline folders), listed among the upscalers."""
        with self._lock:
            return sorted((r for r in self._records.values() if r.kind and r.kind.upscaler),
                          key=lambda r: r.name.lower())

    def update(self, record: ModelRecord) -> None:
        with self._lock:
            self._records[record.ref.key] = record

    def _scan_checkpoint_dir(self, folder: Path) -> list[ModelRecord]:
        if not folder.is_dir():
            return []
        paths = walk(folder)
        model_dirs = {p.parent for p in paths if p.name == "model_index.json"}
        out: list[ModelRecord] = []
        for path in paths:
            inside_model = any(parent in model_dirs for parent in path.parents)
            in_sidecar = any(part.endswith(SIDECAR_SUFFIX) for part in path.relative_to(folder).parts)
            if inside_model or in_sidecar:
                continue  # component files of a diffusers folder, or a sidecar config
            if path in model_dirs:
                out.append(_record_for_folder(path))
            elif path.is_file() and path.suffix in _SINGLE_FILE_SUFFIXES + _PICKLE_SUFFIXES:
                record = _record_for_file(path, self._settings.allow_pickle)
                if record:
                    out.append(record)
        return out

    def _scan_hub_cache(self) -> list[ModelRecord]:
        cache = self.hub_cache_dir()
        if not cache.is_dir():
            return []
        out: list[ModelRecord] = []
        for repo_path in sorted(cache.glob("models--*")):
            repo_id = repo_path.name[len("models--"):].replace("--", "/")
            snapshot = _main_snapshot(repo_path)
            if snapshot is None or not (snapshot / "model_index.json").exists():
                continue  # not a diffusers pipeline (an upscaler, a text encoder...)
            ref = ModelRef(SourceKind.HUB, repo_id)
            try:
                kind = detect_folder(snapshot, name_hint=repo_id)
                out.append(ModelRecord(ref=ref, name=repo_id, kind=kind, path=snapshot, sha256=_blob_sha256(snapshot),
                                       size_bytes=folder_size(snapshot)))
            except AtelierError as exc:
                out.append(ModelRecord(ref=ref, name=repo_id, path=snapshot, problem=str(exc)))
        return out

    def find(self, query: str) -> ModelRecord:
        """Find a record by title, name, repo id, path, file name or hash prefix."""
        query = query.strip()
        records = self.records()
        match = _HASH_SUFFIX.match(query)
        wanted_name, wanted_hash = (match.group(1), match.group(2)) if match else (query, None)
        for record in records:
            if query in (record.title, record.ref.location, record.name) or (record.path and query == record.path.name):
                return record
        for record in records:  # "name [hash]" whose hash is not computed yet
            if wanted_name == record.name:
                return record
        prefix = (wanted_hash or query).lower()
        if re.fullmatch(r"[0-9a-f]{8,64}", prefix):  # a bare or bracketed hash
            for record in records:
                if record.sha256 and record.sha256.startswith(prefix):
                    return record
        for record in self.upscaler_records():
            if query in (record.name, record.ref.location) or (record.path and query == record.path.name):
                raise UnsupportedModelError(f"{record.name} is the SD x4 upscaler: pick it as an upscaler "
                                            "(Extras, hires fix), not as a checkpoint")
        raise ModelNotFoundError(
            f"no model named {query!r}; put a .safetensors file or diffusers folder in "
            f"{self._settings.checkpoint_dirs[0]}, or give a Hub repo id such as {self._settings.default_model!r}"
        )

    def hub_record(self, repo_id: str) -> ModelRecord:
        """A record for a Hub repo that is not in the cache yet (to download)."""
        return ModelRecord(ref=ModelRef(SourceKind.HUB, repo_id), name=repo_id, installed=False)
