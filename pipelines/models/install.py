"""Install: getting any kind of model onto disk from the Hub, with byte progress, once.

A whole diffusers repo goes into the Hugging Face cache (:class:`~pipelines.models.hub.HubClient`);
a single file (a LoRA, VAE, embedding, upscaler or single-file checkpoint) goes through the HF cache
into its kind's folder. Two requests for the same download at once share one transfer: the second
waits for the first and both see its progress. huggingface_hub resumes a dropped transfer from the
bytes already on disk; a failed download leaves no file in the kind's folder, so trying again is clean.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.errors import ModelUnavailableError, UnsafeFormatError, ValidationError
from pipelines.files import atomic_file
from pipelines.models.hub import HubClient, _ByteCounter, _tqdm_class
from pipelines.models.kinds import ModelType
from pipelines.models.scan import CHECKPOINT_PICKLES, NETWORK_PICKLES, SAFE_SUFFIXES, UPSCALER_PICKLES
from pipelines.progress import ProgressFn, ProgressUpdate
from pipelines.settings import Settings

log = logging.getLogger(__name__)


class _Transfer:
    """One download in flight: its listeners, then its result or error."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.listeners: list[ProgressFn] = []
        self.result: Any = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def report(self, update: ProgressUpdate) -> None:
        with self._lock:
            listeners = list(self.listeners)
        for listener in listeners:
            listener(update)

    def listen(self, listener: ProgressFn) -> None:
        with self._lock:
            self.listeners.append(listener)


class Installer:
    """Downloads for the store; concurrent requests for the same thing are joined, not repeated."""

    def __init__(self, settings: Settings, hub: HubClient) -> None:
        self._settings = settings
        self._hub = hub
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, ...], _Transfer] = {}

    def _once(self, key: tuple[str, ...], on_progress: ProgressFn, work: Callable[[ProgressFn], Any]) -> Any:
        with self._lock:
            transfer = self._inflight.get(key)
            owner = transfer is None
            if owner:
                transfer = self._inflight[key] = _Transfer()
            transfer.listen(on_progress)
        if not owner:
            log.info("download of %s already running; waiting for it", "/".join(key))
            transfer.done.wait()
        else:
            try:
                transfer.result = work(transfer.report)
            except BaseException as exc:
                transfer.error = exc
            finally:
                with self._lock:
                    del self._inflight[key]
                transfer.done.set()
        if transfer.error is not None:
            raise transfer.error
        return transfer.result

    def download_repo(self, repo_id: str, *, prefer_fp16: bool, on_progress: ProgressFn) -> Path:
        """What a pipeline needs from a diffusers repo, into the HF cache; returns the snapshot folder."""
        return self._once(("repo", repo_id), on_progress, lambda report: self._hub.download_model(
            repo_id, prefer_fp16=prefer_fp16, allow_pickle=self._settings.allow_pickle, on_progress=report))

    def download_model_folder(self, repo_id: str, *, prefer_fp16: bool, on_progress: ProgressFn) -> Path:
        """A one-model diffusers repo (a VAE: ``config.json`` + weights) into the HF cache."""
        return self._once(("folder", repo_id), on_progress, lambda report: self._hub.download_model_folder(
            repo_id, prefer_fp16=prefer_fp16, on_progress=report))

    def download_file(self, repo_id: str, filename: str, folder: Path, model_type: ModelType,
                      on_progress: ProgressFn) -> Path:
        """``repo_id``/``filename`` saved as ``folder/<basename>``; pickled files need ``allow_pickle``."""
        _check_suffix(filename, model_type, self._settings.allow_pickle)
        return self._once(("file", repo_id, filename, str(folder)), on_progress,
                          lambda report: self._fetch_file(repo_id, filename, folder, report))

    def _fetch_file(self, repo_id: str, filename: str, folder: Path, on_progress: ProgressFn) -> Path:
        from huggingface_hub import HfApi, hf_hub_download

        settings = self._settings
        if settings.hub_offline:
            raise ModelUnavailableError(f"{repo_id}/{filename} cannot be downloaded: Hub access is off "
                                        "(HF_HUB_OFFLINE)")
        common: dict = {}
        if settings.hf_cache_dir is not None:
            common["cache_dir"] = str(settings.hf_cache_dir)
        if settings.hf_endpoint:
            common["endpoint"] = settings.hf_endpoint
        try:
            info = HfApi(endpoint=common.get("endpoint")).model_info(repo_id, files_metadata=True)
            sizes = {s.rfilename: (s.size or 0) for s in info.siblings or []}
            if filename not in sizes:
                raise ValidationError("filename", f"{repo_id} has no file {filename!r}")
            counter = _ByteCounter(sizes[filename], on_progress, f"Downloading {filename}")
            cached = Path(hf_hub_download(repo_id, filename, tqdm_class=_tqdm_class(counter), **common))
        except ValidationError:
            raise
        except Exception as exc:
            where = settings.hf_endpoint or "the Hugging Face Hub"
            raise ModelUnavailableError(f"{repo_id}/{filename} could not be downloaded from {where} "
                                        f"({type(exc).__name__}: {exc})") from exc
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / Path(filename).name
        with open(cached, "rb") as source, atomic_file(target) as copy:
            shutil.copyfileobj(source, copy)  # the HF cache keeps the blob; the kind's folder gets a plain file
        on_progress(ProgressUpdate("download", sizes[filename], sizes[filename], "bytes", f"Downloaded {filename}"))
        log.info("%s downloaded from %s into %s", filename, repo_id, folder)
        return target


def _check_suffix(filename: str, model_type: ModelType, allow_pickle: bool) -> None:
    pickles = {ModelType.UPSCALER: UPSCALER_PICKLES, ModelType.CHECKPOINT: CHECKPOINT_PICKLES}.get(model_type,
                                                                                                    NETWORK_PICKLES)
    suffix = Path(filename).suffix.lower()
    if suffix not in SAFE_SUFFIXES + pickles:
        allowed = ", ".join(SAFE_SUFFIXES + pickles)
        raise ValidationError("filename", f"{filename!r} is not a {model_type.label} model file ({allowed})")
    if suffix in pickles and not allow_pickle:
        raise UnsafeFormatError(f"{filename} is a pickled file; start Atelier with --allow-pickle to download it")
