"""Model, option and status routes: sd-models, options, samplers, schedulers, upscalers, memory, ...

Lists of things Atelier does not have yet (VAEs, LoRAs, embeddings, styles, scripts, extensions)
are answered with empty lists rather than 404s, so clients that read them at start-up work; the
features that would *use* them are refused where they are asked for (see webui/api/generation.py).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import psutil
import torch
from fastapi import APIRouter, Body

from pipelines import samplers
from pipelines.context import AppContext
from pipelines.models.refs import ModelRecord
from pipelines.models.store import ModelStore
from pipelines.options import OptionsStore
from webui.api.models import (
    EmbeddingsResponse,
    ExtensionItem,
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
    ScriptsList,
    SDModelItem,
    SDVaeItem,
    UpscalerItem,
)
from webui.api.routes_generation import CLIENT_ERRORS

SECRET_MARKERS = ("auth", "password", "token", "secret")
REDACTED = "<redacted>"


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


def add_model_routes(router: APIRouter, ctx: AppContext, options: OptionsStore, cmd_flags: Mapping[str, Any]) -> None:
    store = ctx.store

    @router.get("/sd-models", response_model=list[SDModelItem])
    def sd_models() -> list[SDModelItem]:
        """Installed checkpoints; ``hash`` is null until a model has been loaded once (and hashed)."""
        return [sd_model_item(r) for r in store.checkpoints() if r.installed and not r.problem]

    @router.post("/refresh-checkpoints", response_model=None)
    def refresh_checkpoints() -> None:
        store.refresh()

    @router.get("/options", response_model=OptionsModel)
    def get_options() -> dict[str, Any]:
        """Every option Atelier knows with its current value, plus unknown keys clients stored."""
        return options.values()

    @router.post("/options", response_model=None, responses=CLIENT_ERRORS)
    def set_options(changes: dict[str, Any] = Body(...)) -> None:
        """Change options; ``sd_model_checkpoint`` loads that model now. Saved in data_dir/config.json."""
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

    _add_empty_lists(router)


def _add_empty_lists(router: APIRouter) -> None:
    """Routes for things Atelier has none of yet: they answer, with nothing in them."""
    lists: tuple[tuple[str, Any], ...] = (
        ("/sd-vae", SDVaeItem), ("/loras", LoraItem), ("/prompt-styles", PromptStyleItem),
        ("/hypernetworks", HypernetworkItem), ("/face-restorers", FaceRestorerItem),
        ("/realesrgan-models", RealesrganItem), ("/extensions", ExtensionItem), ("/script-info", dict),
    )
    for path, item in lists:
        router.add_api_route(path, _constant([]), methods=["GET"], response_model=list[item], name=path.strip("/"),
                             summary=f"{path.strip('/')}: none yet")
    router.add_api_route("/embeddings", _constant(EmbeddingsResponse()), methods=["GET"],
                         response_model=EmbeddingsResponse, summary="embeddings: none yet")
    router.add_api_route("/scripts", _constant(ScriptsList()), methods=["GET"], response_model=ScriptsList,
                         summary="scripts: none yet")
    for path in ("/refresh-vae", "/refresh-embeddings", "/refresh-loras"):
        router.add_api_route(path, _constant(None), methods=["POST"], response_model=None,
                             summary=f"{path.strip('/')}: nothing to refresh yet")


def _constant(value: Any):
    """An endpoint answering a fresh copy of ``value``."""

    async def endpoint() -> Any:
        return copy.deepcopy(value)

    return endpoint
