"""Set-up of the txt2img benchmark: the models on disk, Atelier's contexts, the Gradio server children.

A server child is this benchmark re-run with ``--_serve`` (see :func:`serve_child`), so it gets the
same settings, model folders and thread count as the in-process contenders.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    ServerProcess,
    announce_and_wait,
    die_with_parent,
    free_port,
    quiet_environment,
    silence_libraries,
)

MODEL_A = "tiny-sd15"
MODEL_B = "tiny-sd15-b"


@dataclass
class Models:
    """Model A (timed) and B (swap target): names as Atelier lists them, and their folders."""

    name_a: str
    name_b: str | None
    folder_a: Path
    folder_b: Path | None
    models_dir: Path  # the data dir's Stable-diffusion folder
    extra_dirs: tuple[Path, ...]  # ckpt_dirs holding a --model-dir


@dataclass
class Endpoints:
    """The server children and the clients connected to them."""

    servers: dict[str, ServerProcess]
    urls: dict[str, str]
    clients: dict[str, Any]  # gradio_client.Client per server key
    http: Any  # httpx.Client on the "e2e_on" server
    idle_server_ms_per_s: float

    def close(self) -> None:
        self.http.close()
        for client in self.clients.values():
            client.close()


def install_models(args: argparse.Namespace, data_dir: Path) -> Models:
    """Model A (and B for swaps), and the extra checkpoint dirs that hold them.

    A ``--model-dir`` is found through ``Settings.ckpt_dirs`` (its parent folder), not a symlink:
    the registry does not descend into symlinked folders (see the report).
    """
    models_dir = data_dir / "models" / "Stable-diffusion"
    if args.model_dir is not None:
        folders = [args.model_dir.resolve()] + ([args.model_dir_b.resolve()] if args.model_dir_b else [])
        extra = tuple(dict.fromkeys(f.parent for f in folders))
        return Models(folders[0].name, folders[1].name if len(folders) > 1 else None, folders[0],
                      folders[1] if len(folders) > 1 else None, models_dir, extra)
    from tests.support.tiny_models import save_sd15_folder

    models_dir.mkdir(parents=True, exist_ok=True)
    if not (models_dir / MODEL_A / "model_index.json").exists():
        save_sd15_folder(models_dir / MODEL_A, seed=0)
    if not (models_dir / MODEL_B / "model_index.json").exists():
        save_sd15_folder(models_dir / MODEL_B, seed=7)
    return Models(MODEL_A, MODEL_B, models_dir / MODEL_A, models_dir / MODEL_B, models_dir, ())


def server_settings(args: argparse.Namespace, data_dir: Path, ckpt_dirs: tuple[Path, ...]):
    from pipelines.settings import Settings

    base = dict(data_dir=data_dir, ckpt_dirs=tuple(ckpt_dirs), hf_cache_dir=data_dir / "hf-cache", hub_offline=True,
                torch_threads=args.threads)
    return Settings(**base, live_preview_every=0), Settings(**base, live_preview_every=args.preview_every)


def contexts(args: argparse.Namespace, data_dir: Path, ckpt_dirs: tuple[Path, ...]):
    """Previews off / on: two engines over one model store, so one copy of the weights."""
    from pipelines.context import AppContext
    from pipelines.engine import Engine

    settings_off, settings_on = server_settings(args, data_dir, ckpt_dirs)
    ctx_off = AppContext.build(settings_off)
    engine_on = Engine(settings_on, ctx_off.store, ctx_off.selection, ctx_off.upscalers)
    ctx_on = dataclasses.replace(ctx_off, settings=settings_on, engine=engine_on)
    return ctx_off, ctx_on


def serve_child(args: argparse.Namespace) -> int:
    """One Gradio app in its own process (previews every ``--preview-every`` steps): print the
    URL, serve until stdin closes. One app per process, as deployed: every Gradio app polls its own
    queue, so two apps in one process would slow each other's jobs."""
    die_with_parent()
    data_dir = args.serve_child
    quiet_environment(args.threads, data_dir)
    import torch

    torch.set_num_threads(args.threads)
    from pipelines.context import AppContext
    from webui.api.app import ApiConfig
    from webui.server import serve

    silence_libraries()
    _, settings_on = server_settings(args, data_dir, tuple(args.child_ckpt_dirs))
    ctx = AppContext.build(settings_on)
    ctx.selection.select(args.child_model)
    demo, url, _ = serve(ctx, host="127.0.0.1", port=free_port(), block=False, api=ApiConfig())  # + /sdapi/v1
    announce_and_wait(url)  # the parent closes our stdin when it is done
    demo.close()
    return 0


def start_server(args: argparse.Namespace, data_dir: Path, models: Models, *, name: str,
                  preview_every: int) -> ServerProcess:
    server_dir = data_dir / f"server-{name}"  # same model files (through ckpt_dirs), own outputs and hash cache
    server_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bench.txt2img", "--_serve", str(server_dir), "--_model", models.name_a,
           "--threads", str(args.threads), "--preview-every", str(preview_every)]
    for folder in (models.models_dir, *models.extra_dirs):
        cmd += ["--_ckpt-dir", str(folder)]
    return ServerProcess(cmd, log_path=data_dir / f"server-{name}.log", freeze=not args.no_freeze_server)


def start_servers(args: argparse.Namespace, data_dir: Path, models: Models) -> dict[str, ServerProcess]:
    """Previews on (always) and off (unless --no-e2e-off); they import while this process loads."""
    servers = {"e2e_on": start_server(args, data_dir, models, name="e2e_on", preview_every=args.preview_every)}
    if not args.no_e2e_off:
        servers["e2e_off"] = start_server(args, data_dir, models, name="e2e_off", preview_every=0)
    return servers


def load_raw_pipeline(folder: Path):
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline

    t0 = time.perf_counter()
    pipe = StableDiffusionPipeline.from_pretrained(str(folder), safety_checker=None,
                                                   requires_safety_checker=False, local_files_only=True)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    print(f"raw diffusers pipeline loaded in {time.perf_counter() - t0:.2f}s")
    return pipe


def connect(data_dir: Path, servers: dict[str, ServerProcess]) -> Endpoints:
    """Wait for the servers (untimed), connect the clients, measure idle CPU; leaves every server frozen."""
    import httpx
    from gradio_client import Client

    t0 = time.perf_counter()
    urls = {key: server.wait_url() for key, server in servers.items()}
    downloads = data_dir / "client-downloads"
    clients = {key: Client(url, verbose=False, download_files=str(downloads / key)) for key, url in urls.items()}
    for server in servers.values():
        server.freeze()
    idle = servers["e2e_on"].idle_cpu_ms_per_s()
    print(f"Gradio server process(es) up, clients connected (waited {time.perf_counter() - t0:.1f}s, not timed); "
          f"idle server CPU {idle:.0f} ms/s")
    http = httpx.Client(base_url=urls["e2e_on"].rstrip("/"), timeout=None)
    return Endpoints(servers, urls, clients, http, idle)
