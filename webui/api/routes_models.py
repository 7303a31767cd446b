"""Model, option and status routes: sd-models, options, samplers, schedulers, upscalers, embeddings,
prompt-styles, memory, ...

Lists of things the API does not list yet (hypernetworks, face restorers, ...) are
answered with empty lists rather than 404s, so clients that read them at start-up work; the
features that would *use* the missing ones are refused where they are asked for (see
webui/api/generation.py). Every refresh-* route rescans the model store (all kinds at once).

``/embeddings`` sorts the textual-inversion files as a job on the selected checkpoint would
(:func:`pipelines.prompts.embeddings.embeddings_for`): ``loaded`` when the file is not made for
another architecture and its vectors are as wide as the checkpoint's text encoders, else
``skipped`` with a ``reason``. Shapes come from the safetensors header, never the weights (a
pickled file, allowed only with --allow-pickle, is read through the store as a job would). The
encoders' widths come from the checkpoint's ``text_encoder*/config.json`` (its folder, or the
sidecar config of a single file), else from its architecture's reference models.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import psutil
import torch
from fastapi import APIRouter, Body

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.models.architecture import Architecture, read_safetensors_shapes
from pipelines.models.kinds import ModelType
from pipelines.models.refs import ModelRecord
from pipelines.models.store import ModelStore
from pipelines.networks.metadata import alias, file_metadata
from pipelines.networks.vae import vae_title
from pipelines.options import OptionsStore
from pipelines.prompts.embeddings import compatible, per_encoder
from webui.api.errors import naming_model_field
from webui.api.models import (
    EmbeddingItem,
    EmbeddingsResponse,
    FaceRestorerItem,
    FlagsModel,
    HypernetworkItem,
    LatentUpscalerModeItem,
    LoraItem,
    MemoryModelItem,
    MemoryResponse,
    OptionsModel,
    PromptStyleItem,
    RealesrganItem,
    SamplerItem,
    SchedulerItem,
    SDModelItem,
    SDVaeItem,
    SkippedEmbeddingItem,
    UpscalerItem,
)
from webui.api.routes_generation import CLIENT_ERRORS

SECRET_MARKERS = ("auth", "password", "token", "secret")
REDACTED = "<redacted>"
# Text-encoder widths of each architecture's reference models: CLIP-L; OpenCLIP-H; CLIP-L + OpenCLIP-bigG.
REFERENCE_WIDTHS = {Architecture.SD1: [768], Architecture.SD2: [1024], Architecture.SDXL: [768, 1280]}
Parts = list[tuple[int, ...]]  # (vectors, width) per text encoder, as per_encoder reads an embedding


def sd_model_item(record: ModelRecord) -> SDModelItem:
    return SDModelItem(title=record.title, model_name=record.name, hash=record.short_hash, sha256=record.sha256,
                       filename=str(record.path or record.ref.location),
                       config=str(record.config_path) if record.config_path else None)


def redact_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Flags as JSON values; any value of a flag whose name looks secret is replaced."""
    out: dict[str, Any] = {}
    for key, value in flags.items():
        if value and any(marker in key.lower() for marker in SECRET_MARKERS):
            value = REDACTED
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, list | tuple):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        out[key] = value
    return out


class CudaStats(Protocol):
    """The parts of ``torch.cuda`` the memory report reads (tests pass a fake)."""

    def is_available(self) -> bool: ...

    def mem_get_info(self) -> tuple[int, int]: ...

    def memory_stats(self) -> dict[str, Any]: ...


def memory_report(store: ModelStore | None = None, *, cuda: CudaStats | None = None) -> MemoryResponse:
    """RAM of this process and of the machine; CUDA allocator statistics when there is a GPU; and the
    models in the store's memory, with their bytes and tier (A1111 has no ``models``; clients ignore it).

    ``cuda`` is ``torch.cuda`` unless a test passes a stand-in; without a ``store``, ``models`` is empty."""
    cuda = torch.cuda if cuda is None else cuda
    process = psutil.Process(os.getpid()).memory_info()
    total = psutil.virtual_memory().total
    ram = {"free": total - process.rss, "used": process.rss, "total": total}
    models = [MemoryModelItem(name=e.name, type=e.type.value, bytes=e.size_bytes, tier=e.tier.value, in_use=e.in_use)
              for e in (store.memory() if store is not None else [])]
    if not cuda.is_available():
        return MemoryResponse(ram=ram, cuda={"error": "CUDA is not available on this machine"}, models=models)
    free, total_vram = cuda.mem_get_info()
    stats = cuda.memory_stats()

    def pair(name: str) -> dict[str, int]:
        return {"current": stats.get(f"{name}.all.current", 0), "peak": stats.get(f"{name}.all.peak", 0)}

    cuda_report = {
        "system": {"free": free, "used": total_vram - free, "total": total_vram},
        "active": pair("active_bytes"), "allocated": pair("allocated_bytes"),
        "reserved": pair("reserved_bytes"), "inactive": pair("inactive_split_bytes"),
        "events": {"retries": stats.get("num_alloc_retries", 0), "oom": stats.get("num_ooms", 0)},
    }
    return MemoryResponse(ram=ram, cuda=cuda_report, models=models)


def encoder_widths(checkpoint: ModelRecord) -> list[int]:
    """The widths of ``checkpoint``'s text encoders, from its ``text_encoder*/config.json`` when it has a
    folder (or sidecar config), else its architecture's reference widths."""
    folder = checkpoint.config_path or checkpoint.path
    widths: list[int] = []
    for sub in ("text_encoder", "text_encoder_2"):
        config = folder / sub / "config.json" if folder is not None else None
        if config is None or not config.is_file():
            continue
        try:
            widths.append(int(json.loads(config.read_text(encoding="utf-8"))["hidden_size"]))
        except (OSError, ValueError, KeyError, TypeError):
            return REFERENCE_WIDTHS[checkpoint.architecture]
    return widths or REFERENCE_WIDTHS[checkpoint.architecture]


def header_parts(shapes: dict[str, tuple[int, ...]], architecture: Architecture) -> Parts | None:
    """:func:`~pipelines.prompts.embeddings.per_encoder` on a safetensors header: the 2-D shape of each
    text encoder's vectors, or None when the file holds none for ``architecture``."""
    if architecture is Architecture.SDXL:
        return [shapes["clip_l"], shapes["clip_g"]] if "clip_l" in shapes and "clip_g" in shapes else None
    if "clip_g" in shapes:
        return None
    shape = shapes.get("emb_params") or (next(iter(shapes.values())) if len(shapes) == 1 else None)
    if not shape:
        return None
    return [(math.prod(shape[:-1]), shape[-1])]


def embedding_parts(store: ModelStore, record: ModelRecord, architecture: Architecture) -> Parts | None:
    """The vectors' shapes of an embedding file read for ``architecture``: from the safetensors header,
    or (pickles, allowed only with --allow-pickle) from the tensors the store loads, as a job does."""
    assert record.path is not None
    if record.path.suffix == ".safetensors":
        return header_parts(read_safetensors_shapes(record.path), architecture)
    with store.use(record, model_type=ModelType.EMBEDDING) as loaded:
        vectors = per_encoder(loaded.model, architecture)
    return [tuple(v.shape) for v in vectors] if vectors else None


def unusable(record: ModelRecord, parts: Parts | None, checkpoint: ModelRecord | None) -> str | None:
    """Why a job on ``checkpoint`` would skip the embedding (as ``embeddings_for`` decides), or None."""
    if checkpoint is None or checkpoint.architecture is None:
        return "the selected checkpoint is not downloaded yet, so its architecture is unknown"
    problem = compatible(record, checkpoint.architecture)
    if problem is not None:
        return problem
    widths = encoder_widths(checkpoint)
    if parts is None or [part[-1] for part in parts] != widths:
        return f"its vectors ({parts or 'none it can read'}) do not fit this model's text encoders (widths {widths})"
    return None


def embedding_entry(store: ModelStore, record: ModelRecord, checkpoint: ModelRecord | None
                    ) -> tuple[bool, EmbeddingItem]:
    """(usable with ``checkpoint``, A1111's item). ``shape`` is the vector width (SDXL: both encoders'
    widths added, as A1111 reports it), ``vectors`` the vectors per encoder; both 0 when unreadable."""
    reason = record.problem
    parts: Parts | None = None
    if reason is None:
        architecture = record.arch or (checkpoint.architecture if checkpoint is not None else None)
        try:  # read as made for its own architecture when known (a skipped SDXL file still shows its shape)
            parts = embedding_parts(store, record, architecture or Architecture.SD1)
        except Exception as exc:  # a stranger's file: listing reports it, never fails
            reason = f"unreadable ({type(exc).__name__}: {exc})"
        else:
            reason = unusable(record, parts, checkpoint)
    shape, vectors = (sum(part[-1] for part in parts), parts[-1][0]) if parts else (0, 0)
    if reason is None:
        return True, EmbeddingItem(shape=shape, vectors=vectors)
    return False, SkippedEmbeddingItem(shape=shape, vectors=vectors, reason=reason)


def embeddings_report(store: ModelStore, checkpoint: ModelRecord | None) -> EmbeddingsResponse:
    """A1111's ``/embeddings``: every embedding file, ``loaded`` or ``skipped`` for ``checkpoint``."""
    report = EmbeddingsResponse()
    for record in store.records(ModelType.EMBEDDING):
        usable, item = embedding_entry(store, record, checkpoint)
        (report.loaded if usable else report.skipped)[record.name] = item
    return report


def add_model_routes(router: APIRouter, ctx: AppContext, options: OptionsStore, cmd_flags: Mapping[str, Any]) -> None:
    store = ctx.store

    @router.get("/sd-models", response_model=list[SDModelItem])
    def sd_models() -> list[SDModelItem]:
        """Installed checkpoints; ``hash`` is null until a model has been loaded once (and hashed)."""
        return [sd_model_item(r) for r in store.checkpoints() if r.installed and not r.problem]

    for path in ("/refresh-checkpoints", "/refresh-vae", "/refresh-loras", "/refresh-embeddings"):
        router.add_api_route(path, _refresh(store), methods=["POST"], response_model=None, name=path.strip("/"),
                             summary=f"{path.strip('/')}: rescan the model folders (every kind)")

    @router.get("/embeddings", response_model=EmbeddingsResponse)
    def embeddings() -> EmbeddingsResponse:
        """Textual-inversion files: ``loaded`` = usable with the selected checkpoint, ``skipped`` = made for
        another architecture, the wrong width or unreadable (with a ``reason``, Atelier's addition)."""
        return embeddings_report(store, ctx.selection.record())

    @router.get("/prompt-styles", response_model=list[PromptStyleItem], responses=CLIENT_ERRORS)
    def prompt_styles() -> list[PromptStyleItem]:
        """The styles of data_dir/styles.csv, in file order (for txt2img/img2img ``styles``)."""
        return [PromptStyleItem(name=style.name, prompt=style.prompt, negative_prompt=style.negative_prompt)
                for style in ctx.styles.all().values()]

    @router.get("/options", response_model=OptionsModel)
    def get_options() -> dict[str, Any]:
        """Every option Atelier knows with its current value, plus unknown keys clients stored."""
        return options.values()

    @router.post("/options", response_model=None, responses=CLIENT_ERRORS)
    def set_options(changes: dict[str, Any] = Body(...)) -> None:
        """Change options; ``sd_model_checkpoint`` loads that model now. Saved in data_dir/config.json."""
        with naming_model_field("sd_model_checkpoint"):
            options.update(changes)

    @router.get("/cmd-flags", response_model=FlagsModel)
    def cmd_flags_route() -> FlagsModel:
        """The flags this process was started with; auth values are never echoed."""
        return FlagsModel(**redact_flags(cmd_flags))

    @router.get("/samplers", response_model=list[SamplerItem])
    def sampler_list() -> list[SamplerItem]:
        return [SamplerItem(name=s.name, aliases=list(s.aliases),
                            options={"scheduler": s.default_schedule} if s.default_schedule != "uniform" else {})
                for s in samplers.SAMPLERS]

    @router.get("/schedulers", response_model=list[SchedulerItem])
    def scheduler_list() -> list[SchedulerItem]:
        return [SchedulerItem(name=s.name, label=s.label, aliases=None, need_inner_model=False,
                              default_rho=s.default_rho)
                for s in samplers.SCHEDULES if s.name != "automatic"]

    @router.get("/upscalers", response_model=list[UpscalerItem])
    def upscaler_list() -> list[UpscalerItem]:
        """None, Lanczos, Nearest, then the model files in models/ESRGAN (and RealESRGAN, SwinIR, HAT, DAT,
        ScuNET); ``scale`` is the model's own once it was loaded, else the one its name announces."""
        return [UpscalerItem(**item) for item in ctx.upscalers.items()]

    @router.get("/latent-upscale-modes", response_model=list[LatentUpscalerModeItem])
    def latent_upscale_modes() -> list[LatentUpscalerModeItem]:
        """A1111's latent modes, for hires fix's ``hr_upscaler`` (and img2img's resize mode 3)."""
        from pipelines.imaging.latent_upscale import (
            LATENT_UPSCALE_MODES,  # imported here: this route is all that uses it
        )

        return [LatentUpscalerModeItem(name=name) for name in LATENT_UPSCALE_MODES]

    @router.post("/unload-checkpoint", response_model=dict)
    def unload_checkpoint() -> dict:
        """Drop every model not in use from memory (a running job keeps its model)."""
        store.unload()
        return {}

    @router.post("/reload-checkpoint", response_model=dict, responses=CLIENT_ERRORS)
    def reload_checkpoint() -> dict:
        """Load the selected checkpoint again (from the cache when it is still there)."""
        ctx.selection.select(ctx.selection.current)
        return {}

    @router.get("/memory", response_model=MemoryResponse)
    def memory() -> MemoryResponse:
        """A1111's ``ram`` and ``cuda``, plus ``models``: each model in memory with its bytes and tier."""
        return memory_report(store)

    @router.get("/loras", response_model=list[LoraItem])
    def loras() -> list[LoraItem]:
        """The LoRA files in models/Lora (and LyCORIS, --lora-dir), with their training metadata (A1111's shape)."""
        items = []
        for record in store.records(ModelType.LORA):
            metadata = file_metadata(record.path) if record.path else {}
            items.append(LoraItem(name=record.name, alias=alias(record.name, metadata), path=str(record.path),
                                  metadata=metadata))
        return items

    @router.get("/sd-vae", response_model=list[SDVaeItem])
    def sd_vaes() -> list[SDVaeItem]:
        """The VAEs the SD VAE setting can name (models/VAE, --vae-dir, NAME.vae.safetensors beside checkpoints,
        Hub VAE repos): ``model_name`` is the value for ``sd_vae``, ``filename`` the file or folder."""
        return [SDVaeItem(model_name=vae_title(r), filename=str(r.path)) for r in store.records(ModelType.VAE)
                if r.installed and not r.problem and r.path is not None]

    _add_empty_lists(router)


def _add_empty_lists(router: APIRouter) -> None:
    """Routes for things the API does not list yet: they answer, with nothing in them."""
    lists: tuple[tuple[str, Any], ...] = (
        ("/hypernetworks", HypernetworkItem), ("/face-restorers", FaceRestorerItem),
        ("/realesrgan-models", RealesrganItem),
    )
    for path, item in lists:
        router.add_api_route(path, _constant([]), methods=["GET"], response_model=list[item], name=path.strip("/"),
                             summary=f"{path.strip('/')}: none yet")


def _refresh(store: ModelStore):
    """An endpoint rescanning every kind of model (A1111's refresh-* routes all land here)."""

    def endpoint() -> None:
        store.refresh()

    return endpoint


def _constant(value: Any):
    """An endpoint answering a fresh copy of ``value``."""

    async def endpoint() -> Any:
        return copy.deepcopy(value)

    return endpoint
