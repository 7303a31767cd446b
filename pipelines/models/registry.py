"""Records: every model that exists, of every kind, on disk and in the Hugging Face cache.

One :meth:`ModelRegistry.refresh` rescans all kinds (A1111's folders plus the ``--*-dir`` flags);
otherwise the registry answers from memory. Hashes computed earlier survive a rescan of an
unchanged file.
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
from dataclasses import replace
from pathlib import Path

from pipelines.errors import ModelNotFoundError, UnsupportedModelError
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord, ModelRef, SourceKind
from pipelines.models.scan import ScanResult, scan_checkpoint_dir, scan_files, scan_hub_cache, scan_taesd
from pipelines.settings import Settings

log = logging.getLogger(__name__)
_HASH_SUFFIX = re.compile(r"^(.*?)\s*\[([0-9a-fA-F]{8,64})\]$")


class ModelRegistry:
    """What models exist; rescanned on :meth:`refresh`, otherwise answered from memory."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._records: dict[str, ModelRecord] = {}
        self._skipped: dict[ModelType, list[Path]] = {}

    def hub_cache_dir(self) -> Path:
        if self._settings.hf_cache_dir is not None:
            return self._settings.hf_cache_dir
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)

    def folders(self, model_type: ModelType) -> tuple[Path, ...]:
        """Where files of ``model_type`` are looked for (downloads go to the first)."""
        s = self._settings
        return {ModelType.CHECKPOINT: s.checkpoint_dirs, ModelType.VAE: s.vae_folders, ModelType.LORA: s.lora_folders,
                ModelType.EMBEDDING: s.embedding_folders, ModelType.TAESD: s.taesd_folders,
                ModelType.UPSCALER: s.upscaler_dirs,
                ModelType.SD_X4_UPSCALER: s.checkpoint_dirs, ModelType.IMAGE_VARIATION: s.checkpoint_dirs}[model_type]

    def refresh(self) -> list[ModelRecord]:
        """Rescan every kind; returns every record."""
        allow = self._settings.allow_pickle
        result = ScanResult()
        for folder in self._settings.checkpoint_dirs:
            scan_checkpoint_dir(folder, result, allow_pickle=allow)
        scan_hub_cache(self.hub_cache_dir(), result)
        for model_type in (ModelType.VAE, ModelType.LORA, ModelType.EMBEDDING, ModelType.UPSCALER):
            scan_files(self.folders(model_type), model_type, result, allow_pickle=allow)
        scan_taesd(self.folders(ModelType.TAESD), result)
        found = {r.ref.key: r for r in result.records}
        default_ref = ModelRef(SourceKind.HUB, self._settings.default_model)
        found.setdefault(default_ref.key, ModelRecord(ref=default_ref, name=self._settings.default_model,
                                                      installed=False))
        with self._lock:
            for key, record in found.items():  # keep hashes (and probe results) computed for unchanged files
                old = self._records.get(key)
                if old and old.size_bytes == record.size_bytes:
                    probed = old.prediction if old.prediction and old.prediction.probed else None
                    found[key] = replace(record, sha256=record.sha256 or old.sha256,
                                         addnet_hash=record.addnet_hash or old.addnet_hash,
                                         prediction=record.prediction or probed)
            self._records = found
            self._skipped = result.skipped_pickles
        counts = {t.value: len(self.records(t)) for t in ModelType}
        log.info("model registry: %s", ", ".join(f"{n} {t}" for t, n in counts.items()))
        return self.records()

    def records(self, model_type: ModelType | None = None) -> list[ModelRecord]:
        """Records of one type (all types when None), installed first, by name."""
        with self._lock:
            chosen = [r for r in self._records.values() if model_type is None or r.type is model_type]
        return sorted(chosen, key=lambda r: (r.type.value if model_type is None else "", not r.installed,
                                             r.name.lower()))

    def skipped_pickles(self, model_type: ModelType) -> list[Path]:
        """Pickled files of ``model_type`` left out because ``--allow-pickle`` is off."""
        with self._lock:
            return list(self._skipped.get(model_type, []))

    def update(self, record: ModelRecord) -> None:
        with self._lock:
            self._records[record.ref.key] = record

    def get(self, key: str) -> ModelRecord | None:
        with self._lock:
            return self._records.get(key)

    def find(self, query: str, model_type: ModelType = ModelType.CHECKPOINT) -> ModelRecord:
        """A record of ``model_type`` by title, name, repo id, path, file name or hash prefix."""
        query = query.strip()
        records = self.records(model_type)
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
                if (record.sha256 and record.sha256.startswith(prefix)) or \
                        (record.addnet_hash and record.addnet_hash.startswith(prefix)):
                    return record
        if model_type is ModelType.CHECKPOINT:
            for record in self.records(ModelType.SD_X4_UPSCALER):
                if query in (record.name, record.ref.location) or (record.path and query == record.path.name):
                    raise UnsupportedModelError(f"{record.name} is the SD x4 upscaler: pick it as an upscaler "
                                                "(Extras, hires fix), not as a checkpoint")
        raise ModelNotFoundError(self._not_found(query, model_type, records))

    def _not_found(self, query: str, model_type: ModelType, records: list[ModelRecord]) -> str:
        folder = self.folders(model_type)[0]
        if model_type is ModelType.CHECKPOINT:
            return (f"no model named {query!r}; put a .safetensors file or diffusers folder in {folder}, "
                    f"or give a Hub repo id such as {self._settings.default_model!r}")
        close = difflib.get_close_matches(query, [r.name for r in records], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"no {model_type.label} named {query!r} in {folder}{hint}"

    def hub_record(self, repo_id: str, model_type: ModelType = ModelType.CHECKPOINT) -> ModelRecord:
        """A record for a Hub repo that is not in the cache yet (to download)."""
        return ModelRecord(ref=ModelRef(SourceKind.HUB, repo_id, model_type), name=repo_id, installed=False)
