"""Downloading an upscaler file from the Hugging Face Hub into ``models/ESRGAN``, with byte progress."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pipelines.errors import ModelUnavailableError, UnsafeFormatError, ValidationError
from pipelines.models.hub import _ByteCounter, _tqdm_class  # the same byte progress as model downloads
from pipelines.progress import ProgressFn, ProgressUpdate
from pipelines.settings import Settings
from pipelines.upscalers.records import PICKLE_SUFFIXES, SAFE_SUFFIXES

log = logging.getLogger(__name__)


def download_file(settings: Settings, repo_id: str, filename: str, folder: Path, on_progress: ProgressFn) -> Path:
    """``repo_id``/``filename`` saved as ``folder/<basename>``; pickled files need ``allow_pickle``."""
    from huggingface_hub import HfApi, hf_hub_download

    suffix = Path(filename).suffix.lower()
    if suffix not in SAFE_SUFFIXES + PICKLE_SUFFIXES:
        raise ValidationError("filename", f"{filename!r} is not an upscaler model file (.safetensors, .pth, .pt)")
    if suffix in PICKLE_SUFFIXES and not settings.allow_pickle:
        raise UnsafeFormatError(f"{filename} is a pickled file; start Atelier with --allow-pickle to download it")
    if settings.hub_offline:
        raise ModelUnavailableError(f"{repo_id}/{filename} cannot be downloaded: Hub access is off (HF_HUB_OFFLINE)")
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
    partial = target.with_name(target.name + ".part")
    shutil.copyfile(cached, partial)  # the HF cache keeps the blob; models/ESRGAN gets a plain file
    partial.replace(target)
    on_progress(ProgressUpdate("download", sizes[filename], sizes[filename], "bytes", f"Downloaded {filename}"))
    log.info("upscaler %s downloaded from %s into %s", filename, repo_id, folder)
    return target
