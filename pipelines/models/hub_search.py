"""Searching the Hugging Face Hub for models, and installing a result as the kind of model it is.

:func:`search_hub` asks the Hub (``settings.hf_endpoint``) for repos matching a query, most downloaded
first, and tells for each what Atelier would install it as (:func:`classify`): a diffusers pipeline is
a checkpoint (or the SD x4 upscaler) and goes whole into the HF cache; a LoRA, embedding, VAE,
upscaler or single-file checkpoint is one file of the repo, copied into its kind's folder.
:func:`install` does that through the store. Offline, :class:`HubSearchUnavailable` says why.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from pipelines.errors import ModelNotFoundError, ModelUnavailableError, ValidationError
from pipelines.models.architecture import SD_PIPELINES, SDXL_PIPELINES, UNCONDITIONAL_PIPELINES, UPSCALE_PIPELINES
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord
from pipelines.models.scan import CHECKPOINT_PICKLES, NETWORK_PICKLES, SAFE_SUFFIXES, UPSCALER_PICKLES
from pipelines.models.store import ModelStore
from pipelines.progress import ProgressFn, ignore_progress
from pipelines.settings import Settings

log = logging.getLogger(__name__)

#: What a search asks the Hub to return for each repo (``list_models(expand=...)``).
SEARCH_FIELDS = ["downloads", "likes", "cardData", "tags", "pipeline_tag", "library_name", "siblings", "usedStorage"]
PROBE_TIMEOUT_S = 3.0  # a dead endpoint answers within this or is called unreachable

_LORA_TAGS = {"lora", "lycoris", "locon", "loha", "lokr", "template:sd-lora"}
_EMBEDDING_TAGS = {"textual_inversion", "textual-inversion", "embedding", "embeddings"}
_VAE_TAGS = {"vae", "autoencoder"}
_UPSCALER_TAGS = {"super-resolution", "image-super-resolution", "upscaler", "upscaling", "esrgan", "real-esrgan",
                  "realesrgan", "swinir", "spandrel"}
_SD_TAGS = {"stable-diffusion", "stable-diffusion-xl", "stable-diffusion-diffusers", "sdxl", "sd-1.5", "sd1.5"}
_RUNNABLE_PIPELINES = SD_PIPELINES | SDXL_PIPELINES | UNCONDITIONAL_PIPELINES  # DDPM/DDIM: modes/unconditional.py
_IMAGE_TASKS = {None, "text-to-image", "image-to-image", "unconditional-image-generation"}
_DIFFUSERS_WEIGHTS = "diffusion_pytorch_model"
_PICKLES = {ModelType.UPSCALER: UPSCALER_PICKLES, ModelType.CHECKPOINT: CHECKPOINT_PICKLES}


class HubSearchUnavailable(ModelUnavailableError):
    """The Hub cannot be searched now; ``reason`` is ``"offline"`` (Hub access is off) or ``"unreachable"``."""

    def __init__(self, reason: Literal["offline", "unreachable"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class HubModel:
    """One search result: what the Hub says of a repo and what Atelier would install it as."""

    repo_id: str
    downloads: int
    likes: int
    license: str | None  # the model card's licence (the Hub's ``license`` field)
    size_bytes: int | None  # of the weight files when the Hub lists their sizes, else the repo's storage
    pipeline_tag: str | None
    library: str | None
    model_type: ModelType | None  # None: not a model Atelier can use (``note`` says why)
    pipeline: bool  # a diffusers pipeline, installed whole into the HF cache
    files: tuple[str, ...] = ()  # single-file kinds: the weight files to choose from
    note: str = ""  # how the kind was told, or why it cannot be installed
    problem: str | None = None  # why installing would be refused (e.g. only pickled files)

    @property
    def installable(self) -> bool:
        return self.model_type is not None and self.problem is None and (self.pipeline or bool(self.files))

    @property
    def kind_label(self) -> str:
        if self.model_type is None:
            return "—"
        return self.model_type.label + (" (diffusers)" if self.pipeline else " (file)")


# ---- telling the kind ----------------------------------------------------------------------------
def _weights(files: Iterable[str], suffixes: Iterable[str]) -> list[str]:
    ends = tuple(suffixes)
    return [f for f in files if f.lower().endswith(ends)]


def classify(repo_id: str, *, tags: Iterable[str], library: str | None, pipeline_tag: str | None,
             files: Iterable[str] | None) -> tuple[ModelType | None, bool, str]:
    """(model type, whole diffusers pipeline?, how it was told or why not) from the Hub's metadata."""
    tag_list = list(tags)
    tag_set = {t.lower() for t in tag_list}
    names = list(files) if files is not None else None
    classes = {t.split(":", 1)[1] for t in tag_list if t.startswith("diffusers:")}
    if "AutoencoderTiny" in classes or PurePosixPath(repo_id).name.lower().startswith(("taesd", "taef")):
        return ModelType.TAESD, False, "a tiny autoencoder (TAESD: diffusers AutoencoderTiny)"
    if (names is not None and "model_index.json" in names) or classes:
        if classes & UPSCALE_PIPELINES:
            return ModelType.SD_X4_UPSCALER, True, "diffusers StableDiffusionUpscalePipeline"
        if classes and not classes & _RUNNABLE_PIPELINES:
            return None, True, (f"{', '.join(sorted(classes))}: Atelier runs Stable Diffusion 1.x, 2.x, SDXL and "
                                "DDPM/DDIM")
        return ModelType.CHECKPOINT, True, "diffusers pipeline (model_index.json)"
    if pipeline_tag not in _IMAGE_TASKS:  # a language model's LoRA is tagged "lora" too
        return None, False, f"a {pipeline_tag} model, not an image model"
    name = PurePosixPath(repo_id).name.lower()
    if tag_set & _LORA_TAGS:
        return ModelType.LORA, False, "tagged LoRA"
    if tag_set & _EMBEDDING_TAGS:
        return ModelType.EMBEDDING, False, "tagged textual inversion"
    if tag_set & _UPSCALER_TAGS or library == "spandrel":
        return ModelType.UPSCALER, False, "tagged super-resolution"
    if tag_set & _VAE_TAGS or "vae" in name.replace("-", " ").replace("_", " ").split():
        return ModelType.VAE, False, "a VAE (by tag or repo name)"
    if tag_set & _SD_TAGS or pipeline_tag == "text-to-image":
        return ModelType.CHECKPOINT, False, "single-file Stable Diffusion checkpoint"
    return None, False, "not tagged as a Stable Diffusion model, LoRA, VAE, embedding or upscaler"


def _license(info: Any) -> str | None:
    card = getattr(info, "card_data", None)
    value = getattr(card, "license", None) if card is not None else None
    if value:
        return str(value)
    return next((t.split(":", 1)[1] for t in info.tags or [] if t.startswith("license:")), None)


def hub_model(info: Any, *, allow_pickle: bool = False) -> HubModel:
    """A :class:`HubModel` from huggingface_hub's ``ModelInfo``."""
    siblings = info.siblings
    names = [s.rfilename for s in siblings] if siblings is not None else None
    sizes = {s.rfilename: s.size for s in siblings or [] if s.size is not None}
    model_type, pipeline, note = classify(info.id, tags=info.tags or [], library=info.library_name,
                                          pipeline_tag=info.pipeline_tag, files=names)
    files: tuple[str, ...] = ()
    problem = None
    if model_type is not None and not pipeline:
        safe = _weights(names or [], SAFE_SUFFIXES)
        pickled = _weights(names or [], _PICKLES.get(model_type, NETWORK_PICKLES))
        files = tuple(sorted(safe or pickled, key=lambda f: -sizes.get(f, 0)))
        if names is None:
            problem = "the Hub did not list this repo's files"
        elif not files:
            problem = f"no {model_type.label} weight file (.safetensors) in this repo"
        elif not safe and not allow_pickle:
            problem = "only pickled files; start Atelier with --allow-pickle to install them"
        elif all(PurePosixPath(f).name.startswith(_DIFFUSERS_WEIGHTS) for f in files):
            problem = "diffusers-layout weights only (a component folder, not a single-file model)"
    wanted = files[:1] if files else names or []
    size = sum(sizes[f] for f in wanted) if wanted and all(f in sizes for f in wanted) else info.used_storage
    return HubModel(repo_id=info.id, downloads=info.downloads or 0, likes=info.likes or 0, license=_license(info),
                    size_bytes=size, pipeline_tag=info.pipeline_tag, library=info.library_name,
                    model_type=model_type, pipeline=pipeline, files=files, note=note, problem=problem)


# ---- searching -----------------------------------------------------------------------------------
def _endpoint(settings: Settings) -> str:
    if settings.hf_endpoint:
        return settings.hf_endpoint.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def check_reachable(settings: Settings) -> None:
    """Raise :class:`HubSearchUnavailable` when Hub access is off or the endpoint does not accept connections.

    huggingface_hub retries an unreachable endpoint with back-off for about 20 s; a plain TCP connect
    with a short timeout tells the user at once instead."""
    if settings.hub_offline:
        raise HubSearchUnavailable("offline", "Hub search is unavailable: Hub access is off (HF_HUB_OFFLINE is set). "
                                   "Unset it and restart to search and download models.")
    endpoint = _endpoint(settings)
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise _unreachable(endpoint, exc) from exc


def _unreachable(endpoint: str, exc: BaseException) -> HubSearchUnavailable:
    return HubSearchUnavailable("unreachable", f"Hub search is unavailable: {endpoint} could not be reached "
                                f"({type(exc).__name__}: {exc}). Check the network connection (or HF_ENDPOINT).")


def search_hub(settings: Settings, query: str, *, limit: int = 20) -> list[HubModel]:
    """Repos whose id contains ``query``, most downloaded first, each with the kind Atelier would install."""
    import httpx2  # huggingface_hub's HTTP client: its transport errors mean "not reachable"
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    query = query.strip()
    if not query:
        raise ValidationError("query", "type part of a model name to search for, e.g. 'sdxl' or 'esrgan'")
    if limit < 1:
        raise ValidationError("limit", f"must be at least 1, got {limit}")
    check_reachable(settings)
    endpoint = _endpoint(settings)
    try:
        infos = list(HfApi(endpoint=endpoint).list_models(search=query, sort="downloads", limit=limit,
                                                          expand=SEARCH_FIELDS))  # type: ignore[arg-type]
    except OfflineModeIsEnabled as exc:
        raise HubSearchUnavailable("offline", "Hub search is unavailable: huggingface_hub is in offline mode "
                                   "(HF_HUB_OFFLINE).") from exc
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", "?")
        raise HubSearchUnavailable("unreachable", f"Hub search is unavailable: {endpoint} answered HTTP {status} "
                                   f"({exc}).") from exc
    except (httpx2.TransportError, OSError) as exc:
        raise _unreachable(endpoint, exc) from exc
    log.info("hub search %r on %s: %d result(s)", query, endpoint, len(infos))
    return [hub_model(info, allow_pickle=settings.allow_pickle) for info in infos]


# ---- installing ----------------------------------------------------------------------------------
def pick_file(model: HubModel, settings: Settings, filename: str | None = None) -> str:
    """The file to install: ``filename`` if given (it must be one of the repo's weight files), the only
    weight file, or the largest (sizes asked of the Hub when the search did not return them)."""
    if filename:
        if filename not in model.files:
            choices = ", ".join(model.files) or "none"
            raise ValidationError("filename", f"{model.repo_id} has no weight file {filename!r} (files: {choices})")
        return filename
    if not model.files:
        raise ValidationError("filename", f"{model.repo_id}: {model.problem or 'no weight file to install'}")
    if len(model.files) == 1:
        return model.files[0]
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=_endpoint(settings)).model_info(model.repo_id, files_metadata=True)
    except Exception as exc:
        raise ModelUnavailableError(f"{model.repo_id}: could not read its file sizes from the Hub "
                                    f"({type(exc).__name__}: {exc})") from exc
    sizes = {s.rfilename: s.size or 0 for s in info.siblings or []}
    return max(model.files, key=lambda f: sizes.get(f, 0))


def install(store: ModelStore, model: HubModel, on_progress: ProgressFn = ignore_progress, *,
            filename: str | None = None) -> ModelRecord:
    """Install a search result as its kind: a pipeline whole into the HF cache, else one file into the kind's
    folder (``filename``, or see :func:`pick_file`); returns the new record."""
    if model.model_type is None:
        raise ValidationError("repo_id", f"{model.repo_id} cannot be installed: {model.note}")
    if model.problem:
        raise ValidationError("repo_id", f"{model.repo_id} cannot be installed: {model.problem}")
    if model.pipeline:
        return store.download(model.repo_id, on_progress, model_type=model.model_type)
    if model.model_type in (ModelType.VAE, ModelType.TAESD) and filename is None:
        try:  # a diffusers-layout VAE repo (config.json + weights) is kept whole, so it loads without guessing
            return store.download(model.repo_id, on_progress, model_type=model.model_type)
        except ModelNotFoundError:
            pass  # no config.json: one weights file into models/VAE
    chosen = pick_file(model, store.settings, filename)
    return store.download(model.repo_id, on_progress, filename=chosen, model_type=model.model_type)
