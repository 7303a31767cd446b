"""A1111's hashes of the store's models (``Model hash``, ``VAE hash``, ``Lora hashes``, ``TI hashes``).

A checkpoint that was never hashed is hashed in the background while it loads (the load and the hash
share the file's reads from the page cache); an image's infotext waits for the hash only when the image
is saved, normally long after it is done. A hash that fails or is turned off (``--no-hashing``, checkpoints)
leaves the key out of the infotext and never fails a job.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from pathlib import Path

from pipelines.models.cache import ModelCache
from pipelines.models.hashing import HashCache
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord, SourceKind
from pipelines.models.registry import ModelRegistry

log = logging.getLogger(__name__)

# How long an image's infotext waits, once the image is made, for its checkpoint's hash begun with the load;
# past it the image is saved without ``Model hash`` rather than held up (a stalled network mount, say).
HASH_WAIT_S = 60.0


def hashed_file(record: ModelRecord) -> Path | None:
    """The file whose sha256 is the model's hash: the file itself, or a folder's UNet weights."""
    if record.path is None:
        return None
    if record.ref.kind is SourceKind.SINGLE_FILE:
        return record.path
    folder = record.path if record.type is ModelType.VAE else record.path / "unet"  # a diffusers VAE folder
    if not folder.is_dir():  # a flat unconditional (DDPM) folder: the UNet's weights at the top
        folder = record.path
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
        weights = folder / name
        if weights.exists():
            return weights.resolve()
    return None


class ModelHashes:
    """Computes, waits for and records the hashes of the models listed in ``registry`` and held in ``cache``."""

    def __init__(self, hashes: HashCache, registry: ModelRegistry, cache: ModelCache, *, no_hashing: bool) -> None:
        self.hashes = hashes
        self._registry = registry
        self._cache = cache
        self._no_hashing = no_hashing  # A1111's --no-hashing: checkpoints are never hashed

    def start_checkpoint(self, record: ModelRecord) -> tuple[ModelRecord, Future[str] | None]:
        """A checkpoint's record with its sha256 when known (this run or ``cache.json``); else its hash begins in
        the background and its future is returned (see :meth:`follow`). Other kinds: as they are."""
        if record.sha256 or record.type is not ModelType.CHECKPOINT or self._no_hashing:
            return record, None
        path = hashed_file(record)
        if path is None:
            return record, None
        known = self.hashes.cached(path)
        if known:
            return record.with_hash(known), None
        return record, self.hashes.submit(path)

    def follow(self, key: str, hashing: Future[str]) -> None:
        """When ``hashing`` is done, give model ``key``'s record (listed and in memory) its hash."""
        hashing.add_done_callback(lambda done: self._apply(key, done.result()) if done.exception() is None else None)

    def _apply(self, key: str, sha256: str) -> None:
        record = self._registry.get(key)
        if record is not None and not record.sha256:
            self._registry.update(record.with_hash(sha256))
        loaded = self._cache.get(key)
        if loaded is not None and not loaded.record.sha256:
            loaded.record = loaded.record.with_hash(sha256)

    def checkpoint_sha256(self, record: ModelRecord, *, timeout: float = HASH_WAIT_S) -> str | None:
        """A checkpoint's sha256 for its images' infotext: known, or waited for (up to ``timeout``) while the hash
        begun with its load finishes. None with ``--no-hashing``, when hashing failed, or after the wait (logged)."""
        if record.sha256:
            return record.sha256
        path = None if self._no_hashing else hashed_file(record)
        if path is None:
            return None
        try:
            sha256 = self.hashes.submit(path).result(timeout)
        except FutureTimeout:
            log.warning("%s: still hashing after %.0f s; the image is saved without its Model hash", record.name,
                        timeout)
            return None
        except Exception as exc:  # noqa: BLE001 - logged where it failed; never fails the job
            log.warning("%s: no Model hash in the infotext (%s)", record.name, exc)
            return None
        self._apply(record.ref.key, sha256)
        return sha256

    def start(self, record: ModelRecord) -> None:
        """Begin :meth:`hashed`'s hashes in the background (a VAE or LoRA about to be loaded), so that its load and
        its hash read the file together; :meth:`hashed` then waits only for what is left."""
        path = hashed_file(record)
        if path is None:
            return
        try:
            if not record.sha256:
                self.hashes.submit(path)
            if record.type is ModelType.LORA and path.suffix == ".safetensors" and not record.addnet_hash:
                self.hashes.submit(path, "addnet")
        except OSError as exc:  # gone meanwhile: the load says so
            log.debug("not hashing %s: %s", path, exc)

    def hashed(self, record: ModelRecord) -> ModelRecord:
        """``record`` with its A1111 hashes (sha256; the addnet hash for LoRA files), computed once and cached;
        as it is when hashing fails (logged)."""
        path = hashed_file(record)
        if path is None:
            return record
        try:
            updated = record if record.sha256 else record.with_hash(self.hashes.sha256(path))
            if record.type is ModelType.LORA and path.suffix == ".safetensors" and not updated.addnet_hash:
                updated = replace(updated, addnet_hash=self.hashes.addnet(path))
        except Exception as exc:  # noqa: BLE001 - a hash is never worth failing a job for
            log.warning("%s: not hashed (%s)", record.name, exc)
            return record
        if updated != record:
            self._registry.update(updated)
        return updated

    def known_sha256(self, record: ModelRecord) -> str | None:
        """The model's sha256 if it was ever computed (this run or ``cache.json``); never hashes."""
        if record.sha256:
            return record.sha256
        path = hashed_file(record)
        return self.hashes.cached(path) if path else None
