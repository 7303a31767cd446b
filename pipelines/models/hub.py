"""Downloads from the Hugging Face Hub into the standard HF cache, with byte progress.

Only what a pipeline needs is fetched: the components named in
``model_index.json`` (no safety checker), safetensors weights (the fp16 variant
when that is all the repo has or the device runs fp16), configs and tokenizers.
huggingface_hub retries a dropped connection inside one call (resuming with a
Range request once data is on disk); a call that still fails leaves no partial
blob, and the next attempt fetches only the files that are missing.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
from pathlib import Path

from tqdm.auto import tqdm

from pipelines.errors import ModelNotFoundError, ModelUnavailableError, UnsafeFormatError, UnsupportedModelError
from pipelines.models.architecture import (
    SD_PIPELINES,
    SDXL_PIPELINES,
    UNCONDITIONAL_PIPELINES,
    UNCONDITIONAL_UNETS,
    UPSCALE_PIPELINES,
    VARIATION_PIPELINES,
)
from pipelines.progress import ProgressFn, ProgressUpdate, ignore_progress
from pipelines.settings import Settings

log = logging.getLogger(__name__)
SKIPPED_COMPONENTS = {"safety_checker", "feature_extractor", "image_encoder"}
CONFIG_PATTERNS = ["model_index.json", "*/*.json", "*/*.txt", "*.json"]


class _ByteCounter:
    """Byte progress from huggingface_hub's bars.

    snapshot_download opens two byte bars over the same bytes (network and
    reconstruction), so progress is the furthest bar, never their sum.
    """

    def __init__(self, total: int, on_progress: ProgressFn, label: str) -> None:
        self.total, self.on_progress, self.label = total, on_progress, label
        self._bars: dict[int, int] = {}
        self._lock = threading.Lock()

    def report(self, bar_id: int, n: int) -> None:
        with self._lock:
            self._bars[bar_id] = n
            done = max(self._bars.values())
        done = min(done, self.total) if self.total else done
        self.on_progress(ProgressUpdate("download", done, self.total, "bytes", self.label))


def _tqdm_class(counter: _ByteCounter) -> type:
    """A tqdm subclass bound to one download; only byte bars are counted."""

    class _Bar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = False
            kwargs.setdefault("file", _NullFile())
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            result = super().update(n)
            if self.unit == "B" and n:
                counter.report(id(self), int(self.n))
            return result

    return _Bar


class _NullFile:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def select_files(files: dict[str, int], model_index: dict, *, prefer_fp16: bool, allow_pickle: bool) -> list[str]:
    """Which repo files a pipeline needs; ``files`` maps path -> size."""
    # an image-variation pipeline draws from its image encoder's embedding: its encoder and processor are needed
    skipped = SKIPPED_COMPONENTS - ({"feature_extractor", "image_encoder"}
                                    if model_index.get("_class_name") in VARIATION_PIPELINES else set())
    components = [k for k, v in model_index.items() if not k.startswith("_") and isinstance(v, list)
                  and v[0] is not None and k not in skipped]
    chosen = ["model_index.json"]
    pickled_only: list[str] = []
    for comp in components:
        in_comp = [f for f in files if f.startswith(comp + "/") and f.count("/") == 1]
        if not in_comp and model_index.get("_class_name") in UNCONDITIONAL_PIPELINES:
            in_comp = [f for f in files if "/" not in f and f != "model_index.json"]  # the flat google/ddpm-* layout
        chosen += [f for f in in_comp if f.endswith((".json", ".txt", ".model"))]
        weights = [f for f in in_comp if f.endswith(".safetensors")]
        fp16 = [f for f in weights if ".fp16." in f]
        plain = [f for f in weights if ".fp16." not in f and not fnmatch.fnmatch(f, "*.*.safetensors")]
        if weights:
            chosen += fp16 if (fp16 and (prefer_fp16 or not plain)) else plain or fp16
            continue
        pickled = [f for f in in_comp if f.endswith(".bin") and ".fp16." not in f]
        if pickled and not allow_pickle:
            pickled_only.append(comp)
        chosen += pickled
    if pickled_only:
        raise UnsafeFormatError(f"only pickled weights (.bin) for {', '.join(pickled_only)}: start Atelier with "
                                "--allow-pickle to load them (weights only), or pick a repo with .safetensors weights")
    return sorted(set(chosen))


def not_a_pipeline(repo_id: str, files: dict[str, int], *, allow_pickle: bool) -> Exception:
    """The error for a repo without ``model_index.json``: pickled weights only (naming --allow-pickle), or not a
    Stable Diffusion model at all (a text model, a LoRA repo), naming what it holds."""
    weights = sorted(f for f in files if f.endswith((".safetensors", ".ckpt", ".bin", ".pt", ".pth")))
    pickles = [f for f in weights if not f.endswith(".safetensors")]
    if pickles and len(pickles) == len(weights) and not allow_pickle:
        return UnsafeFormatError(
            f"{repo_id} has only pickled weights ({', '.join(pickles[:3])}) and no diffusers pipeline "
            "(model_index.json): start Atelier with --allow-pickle, then download one of them as a single file")
    shown = ", ".join(sorted(files)[:6]) + (", ..." if len(files) > 6 else "") if files else "no files"
    return UnsupportedModelError(
        f"{repo_id} is not a Stable Diffusion model: it has no model_index.json (a diffusers pipeline's index), "
        f"only {shown}. Atelier runs SD 1.x, SD 2.x and SDXL pipelines; a single-file checkpoint in a repo is "
        "downloaded by its file name")


class HubClient:
    """Talks to the Hub (or the endpoint in settings) and the local HF cache."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _common(self) -> dict:
        kwargs: dict = {}
        if self._settings.hf_cache_dir is not None:
            kwargs["cache_dir"] = str(self._settings.hf_cache_dir)
        if self._settings.hf_endpoint:
            kwargs["endpoint"] = self._settings.hf_endpoint
        return kwargs

    def cached_snapshot(self, repo_id: str, allow_patterns: list[str] | None = None) -> Path | None:
        """The local snapshot of ``repo_id`` if it is fully cached, without any request."""
        from huggingface_hub import snapshot_download

        try:
            path = snapshot_download(repo_id, local_files_only=True, allow_patterns=allow_patterns, **self._common())
            return Path(path)
        except Exception:
            return None

    def _unreachable(self, repo_id: str, exc: BaseException) -> ModelUnavailableError:
        where = self._settings.hf_endpoint or "the Hugging Face Hub"
        return ModelUnavailableError(
            f"{repo_id} is not downloaded and {where} could not be reached ({type(exc).__name__}). "
            f"Connect to the internet and try again, or put a .safetensors checkpoint or a diffusers folder in "
            f"{self._settings.checkpoint_dirs[0]} and press the refresh button next to the checkpoint list."
        )

    def _map_error(self, repo_id: str, exc: BaseException) -> Exception:
        from huggingface_hub import errors

        if isinstance(exc, errors.GatedRepoError):
            return ModelUnavailableError(f"{repo_id} is gated: accept its licence on the Hub and set HF_TOKEN")
        if isinstance(exc, errors.RepositoryNotFoundError):
            return ModelNotFoundError(f"no model {repo_id!r} on the Hub (or it is private: set HF_TOKEN)")
        if isinstance(exc, errors.HfHubHTTPError) and getattr(exc.response, "status_code", 0) in (401, 403):
            return ModelUnavailableError(f"the Hub refused access to {repo_id}: set HF_TOKEN")
        return self._unreachable(repo_id, exc)

    def download_model(self, repo_id: str, *, prefer_fp16: bool, allow_pickle: bool,
                       on_progress: ProgressFn = ignore_progress) -> Path:
        """Download what a pipeline needs from ``repo_id``; return the snapshot folder."""
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download

        if self._settings.hub_offline:
            raise ModelUnavailableError(
                f"{repo_id} is not downloaded and Hub access is off (HF_HUB_OFFLINE). Put a checkpoint in "
                f"{self._settings.checkpoint_dirs[0]} or run once with the Hub reachable."
            )
        common = self._common()
        try:
            api = HfApi(endpoint=common.get("endpoint"))
            info = api.model_info(repo_id, files_metadata=True)
            files = {s.rfilename: (s.size or 0) for s in info.siblings or []}
            if "model_index.json" in files:
                index = json.loads(Path(hf_hub_download(repo_id, "model_index.json", **common)).read_text())
            elif {"config.json", "scheduler_config.json"} <= set(files) and json.loads(Path(hf_hub_download(
                    repo_id, "config.json", **common)).read_text()).get("_class_name") in UNCONDITIONAL_UNETS:
                index = {"_class_name": "DDPMPipeline", "unet": ["diffusers", "UNet2DModel"]}  # a bare UNet + scheduler
            else:
                raise not_a_pipeline(repo_id, files, allow_pickle=allow_pickle)
            pipeline = index.get("_class_name") if isinstance(index, dict) else None
            if pipeline not in SD_PIPELINES | SDXL_PIPELINES | UPSCALE_PIPELINES | UNCONDITIONAL_PIPELINES | \
                    VARIATION_PIPELINES:
                raise UnsupportedModelError(f"{repo_id} is not a Stable Diffusion model: its pipeline is {pipeline!r}; "
                                            "Atelier runs SD 1.x, SD 2.x and SDXL (and the SD x4 upscaler, DDPM/DDIM)")
            try:
                wanted = select_files(files, index, prefer_fp16=prefer_fp16, allow_pickle=allow_pickle)
            except UnsafeFormatError as exc:
                raise UnsafeFormatError(f"{repo_id} has {exc}") from exc
            wanted = [f for f in wanted if f in files]  # a bare UNet repo has no model_index.json
            total = sum(files[f] for f in wanted)
            counter = _ByteCounter(total, on_progress, f"Downloading {repo_id}")
            log.info("downloading %s: %d files, %d bytes", repo_id, len(wanted), total)
            path = snapshot_download(repo_id, allow_patterns=wanted, tqdm_class=_tqdm_class(counter), **common)
        except (ModelNotFoundError, UnsafeFormatError, UnsupportedModelError):
            raise
        except Exception as exc:
            raise self._map_error(repo_id, exc) from exc
        on_progress(ProgressUpdate("download", total, total, "bytes", f"Downloaded {repo_id}"))
        return Path(path)

    def download_model_folder(self, repo_id: str, *, prefer_fp16: bool,
                              on_progress: ProgressFn = ignore_progress) -> Path:
        """A one-model repo in diffusers layout (``config.json`` + weights at the top, e.g. a VAE) into the HF cache."""
        from huggingface_hub import HfApi, snapshot_download

        if self._settings.hub_offline:
            raise ModelUnavailableError(f"{repo_id} is not downloaded and Hub access is off (HF_HUB_OFFLINE)")
        common = self._common()
        try:
            info = HfApi(endpoint=common.get("endpoint")).model_info(repo_id, files_metadata=True)
            files = {s.rfilename: (s.size or 0) for s in info.siblings or []}
            if "config.json" not in files:
                raise ModelNotFoundError(f"{repo_id} is not a diffusers model folder (no config.json)")
            # the same choice of weights as for a pipeline component, with the repo's top level as the component
            as_component = {f"model/{f}": n for f, n in files.items() if "/" not in f}
            try:
                chosen = select_files(as_component, {"model": ["diffusers", "AutoencoderKL"]},
                                      prefer_fp16=prefer_fp16, allow_pickle=self._settings.allow_pickle)
            except UnsafeFormatError as exc:
                raise UnsafeFormatError(f"{repo_id} has {str(exc).replace('for model', 'for its model')}") from exc
            wanted = sorted({f.removeprefix("model/") for f in chosen if f.startswith("model/")} | {"config.json"})
            total = sum(files[f] for f in wanted)
            counter = _ByteCounter(total, on_progress, f"Downloading {repo_id}")
            path = snapshot_download(repo_id, allow_patterns=wanted, tqdm_class=_tqdm_class(counter), **common)
        except (ModelNotFoundError, UnsafeFormatError):
            raise
        except Exception as exc:
            raise self._map_error(repo_id, exc) from exc
        on_progress(ProgressUpdate("download", total, total, "bytes", f"Downloaded {repo_id}"))
        return Path(path)

    def config_folder(self, repo_id: str) -> Path:
        """Config files (no weights) of a reference repo, from the cache or the Hub."""
        from huggingface_hub import snapshot_download

        cached = self.cached_snapshot(repo_id, allow_patterns=CONFIG_PATTERNS)
        if cached is not None:
            return cached
        if self._settings.hub_offline:
            raise ModelUnavailableError(
                f"this checkpoint needs the configs of {repo_id}, which are not cached and Hub access is off; "
                "put a sidecar config folder next to the file (see README)"
            )
        try:
            return Path(snapshot_download(repo_id, allow_patterns=CONFIG_PATTERNS, **self._common()))
        except Exception as exc:
            raise self._map_error(repo_id, exc) from exc
