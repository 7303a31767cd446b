"""Atelier's entry point: the one place that reads argv, the environment and installs.

    python launch.py [--listen] [--share] [--port 7860] [--ckpt NAME_OR_HUB_ID] ...

Flag names follow AUTOMATIC1111's webui where one exists.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.metadata
import importlib.util
import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # launch.py imports the project only once the requirements are installed
    from pipelines.context import AppContext

ROOT = Path(__file__).resolve().parent
log = logging.getLogger("atelier")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launch.py", description="Atelier: a Stable Diffusion studio in your browser")
    net = p.add_argument_group("server")
    net.add_argument("--port", type=int, default=None, help="port to serve on (default 7860; 7861 with --nowebui)")
    net.add_argument("--listen", action="store_true", help="bind 0.0.0.0 so other machines can connect")
    net.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    net.add_argument("--server-name", metavar="HOST", help="bind this address (overrides --listen)")
    net.add_argument("--enable-insecure-extension-access", action="store_true",
                     help="allow installing and switching extensions even with --listen, --share or --server-name")
    net.add_argument("--gradio-auth", metavar="USER:PASS[,USER2:PASS2]",
                     help="protect the UI with a login (and the REST API too, unless --api-auth sets its own)")
    net.add_argument("--insecure", action="store_true",
                     help="serve with --listen, --share or --server-name without a login (refused otherwise)")
    api = p.add_argument_group("REST API (AUTOMATIC1111-compatible, under /sdapi/v1)")
    api.add_argument("--api", action="store_true",
                     help="also serve the REST API beside the UI (off by default, as in A1111)")
    api.add_argument("--api-auth", metavar="USER:PASS[,USER2:PASS2]",
                     help="HTTP Basic login for every /sdapi route (default: the --gradio-auth accounts)")
    api.add_argument("--nowebui", action="store_true", help="serve only the REST API (default port 7861)")
    scale = p.add_argument_group("scale out (Ray Serve; see the README's \"Scaling out\")")
    scale.add_argument("--ray", metavar="ADDRESS",
                       help="run the device work on Ray Serve engine replicas: local:N starts a local cluster of N, "
                            "auto joins the cluster this machine is in, HOST:PORT or ray://HOST:10001 another one")
    scale.add_argument("--ray-cpus-per-replica", type=int, metavar="N",
                       help="CPU cores per replica (local:N: this machine's cores shared out; a joined cluster "
                            "without GPUs: 4)")
    scale.add_argument("--ray-gpus-per-replica", type=float, metavar="N",
                       help="GPUs per replica (default 1 where the cluster has GPUs; 0: CPU replicas)")
    from webui.cli_commands import add_core_arguments  # stdlib only at import: parsed before the installs

    add_core_arguments(p)
    return p


def parse_auth(value: str | None, flag: str = "--gradio-auth") -> list[tuple[str, str]] | None:
    if not value:
        return None
    pairs = []
    for item in value.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user:
            raise SystemExit(f"{flag} expects USER:PASS[,USER2:PASS2], got {item!r}")
        pairs.append((user, password))
    return pairs


def missing_requirements(requirements: Path) -> list[str]:
    """Pinned requirements the running Python does not have at the pinned version."""
    missing = []
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if not match:
            continue
        name, version = match.groups()
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(line.strip())
            continue
        if installed.split("+")[0] != version:
            missing.append(line.strip())
    return missing


# Installed with --no-deps: spandrel declares torchvision, whose PyPI wheels are CUDA builds that break a
# CPU torch (see pipelines/models/spandrel_import.py); its real dependencies are in requirements.txt.
NODEPS_REQUIREMENTS = "requirements-nodeps.txt"


def ensure_requirements(args: argparse.Namespace) -> None:
    for filename, extra in (("requirements.txt", []), (NODEPS_REQUIREMENTS, ["--no-deps"])):
        path = ROOT / filename
        missing = missing_requirements(path) if path.exists() else []
        if missing and not args.skip_install:
            print(f"Installing requirements ({', '.join(missing)}) ...", flush=True)
            subprocess.check_call([sys.executable, "-m", "pip", "install", *extra, "-r", str(path)])
        elif missing:
            print(f"warning: missing requirements: {', '.join(missing)}", file=sys.stderr)


def ensure_xformers(args: argparse.Namespace) -> None:
    if not args.xformers or args.skip_install:
        return
    import importlib.util

    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("xformers") is None:
        print("Installing xformers for CUDA ...", flush=True)
        # Each xformers release needs one exact torch: pin the running one so pip picks a
        # matching xformers (or fails) instead of replacing torch.
        torch_pin = f"torch=={torch.__version__.split('+')[0]}"
        subprocess.check_call([sys.executable, "-m", "pip", "install", "xformers", torch_pin])


def build_settings(args: argparse.Namespace):
    from pipelines.options import saved_checkpoint
    from pipelines.settings import Settings

    attention = "xformers" if args.xformers else "sliced" if args.opt_split_attention else (
        "sdpa" if args.opt_sdp_attention else "auto")
    memory = "lowvram" if args.lowvram else "medvram" if args.medvram else "auto"
    return Settings(
        data_dir=args.data_dir.resolve(),
        ckpt_dirs=tuple(d.resolve() for d in args.ckpt_dir),
        vae_dirs=tuple(d.resolve() for d in args.vae_dir),
        lora_dirs=tuple(d.resolve() for d in args.lora_dir),
        embeddings_dirs=tuple(d.resolve() for d in args.embeddings_dir),
        device=args.device,
        attention=attention,
        memory_mode=memory,
        no_half=args.no_half,
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        compile_mode=args.compile_mode,
        compile_backend=args.compile_backend,
        allow_pickle=args.allow_pickle,
        no_hashing=args.no_hashing,
        initial_model=args.ckpt or saved_checkpoint(args.data_dir.resolve()),
        torch_threads=args.threads,
        hf_endpoint=os.environ.get("HF_ENDPOINT") or None,
        hub_offline=os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"),
        extensions_dir=args.extensions_dir.resolve() if args.extensions_dir else None,
        disable_all_extensions=args.disable_all_extensions,
        disable_extra_extensions=args.disable_extra_extensions,
        # how far the server is reachable (`generate` serves nothing): the extension gate reads these
        listen=getattr(args, "listen", False),
        share=getattr(args, "share", False),
        server_name=getattr(args, "server_name", None),
        enable_insecure_extension_access=getattr(args, "enable_insecure_extension_access", False),
    )


def prepare(args: argparse.Namespace):
    """Install what is missing, set the environment, build settings and the app context."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_requirements(args)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(args.data_dir.resolve() / ".gradio_tmp"))
    ensure_xformers(args)
    settings = build_settings(args)

    import torch

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    from pipelines.context import AppContext

    return AppContext.build(settings)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["generate"], ["imagine"]):
        from webui import cli_commands  # stdlib only at import: the flags are parsed before the installs

        command = cli_commands.generate_main if argv[0] == "generate" else cli_commands.imagine_main
        raise SystemExit(command(argv[1:], prepare=prepare))
    args = build_parser().parse_args(argv)
    check_exposure(args)
    ctx = prepare(args)
    if args.ray:  # every job runs on the cluster's replicas; --ckpt is only selected here, they load it
        attach_cluster(ctx, args)
    elif args.ckpt:  # a checkpoint saved by /sdapi/v1/options is only selected, and loaded on first use
        # Loaded beside the server's imports and page build (the second core, the disk), not before them; a job
        # arriving meanwhile waits for this load in the store instead of starting another.
        threading.Thread(target=load_initial_checkpoint, args=(ctx, args.ckpt), name="atelier-ckpt-load",
                         daemon=True).start()
    host = bind_host(args)
    api = build_api_config(args)
    if args.nowebui:
        from webui.api_server import serve_api  # no Gradio: its import is most of the page's start-up

        server = serve_api(ctx, host=host, port=server_port(args), api=api, block=False)
    else:
        from webui.server import serve

        server, _, _ = serve(ctx, host=host, port=server_port(args), share=args.share,
                             auth=parse_auth(args.gradio_auth), block=False, api=api, restart=restart_process)
    from pipelines.lazy_diffusers import warm_up

    threading.Thread(target=warm_up, name="atelier-warm-up", daemon=True).start()
    server.block_thread()


RAY_REQUIREMENTS = "requirements-ray.txt"


def attach_cluster(ctx: AppContext, args: argparse.Namespace) -> None:
    """``--ray``: start or join the Ray cluster (installing Ray Serve first when it is missing), deploy the engine
    replicas and run every job there from now on; the cluster is let go when this process exits."""
    from pipelines.cluster.target import parse_target
    from pipelines.errors import ValidationError

    try:
        target = parse_target(args.ray, cpus_per_replica=args.ray_cpus_per_replica,
                              gpus_per_replica=args.ray_gpus_per_replica)
    except ValidationError as exc:
        raise SystemExit(f"--{exc.field.replace('_', '-')}: {exc.message}") from None
    if importlib.util.find_spec("ray") is None:
        if args.skip_install:
            raise SystemExit(f"--ray needs Ray Serve: pip install -r {RAY_REQUIREMENTS}")
        print("Installing Ray Serve for --ray ...", flush=True)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-r", str(ROOT / RAY_REQUIREMENTS)])
    from pipelines.cluster.deploy import start_cluster

    try:
        cluster = start_cluster(target, ctx.settings)
    except ValidationError as exc:
        raise SystemExit(f"--ray: {exc.message}") from None
    atexit.register(cluster.close)
    ctx.engine.attach_remote(cluster)


def load_initial_checkpoint(ctx: AppContext, name: str) -> None:
    """``--ckpt``: load and select it; a failure is logged (the UI still starts and says what is wrong on Generate)."""
    try:
        ctx.selection.select(name)
    except Exception as exc:
        log.error("could not load --ckpt %s: %s", name, exc)


def restart_process() -> None:
    """Replace this process with a new one started the same way (the Extensions tab's "Apply and restart
    UI": the new process loads the extensions afresh). The listening socket is not inherited, so the port is
    free for the new server."""
    log.info("restarting: %s %s", sys.executable, " ".join(redacted_argv(sys.argv)))
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, *sys.argv])


def bind_host(args: argparse.Namespace) -> str:
    """The address to bind: --server-name, else 0.0.0.0 with --listen, else loopback only."""
    return args.server_name or ("0.0.0.0" if args.listen else "127.0.0.1")


def check_exposure(args: argparse.Namespace) -> None:
    """Refuse to serve other machines without a login (SystemExit naming the flags), unless --insecure
    says the user means it (then a warning). The login is --gradio-auth; the API alone also takes --api-auth."""
    from webui.guard import is_loopback

    exposed = [flag for flag, on in (("--listen", args.listen), ("--share", args.share and not args.nowebui),
                                     ("--server-name", args.server_name and not is_loopback(args.server_name))) if on]
    login = args.gradio_auth or (args.nowebui and args.api_auth)
    if not exposed or login:
        return
    reach = "anyone with the share link" if "--share" in exposed else "anyone on the network"
    if not args.insecure:
        raise SystemExit(f"{' and '.join(exposed)} would let {reach} use Atelier without a login: add "
                         f"--gradio-auth USER:PASS{' (or --api-auth)' if args.nowebui else ''}, "
                         "or --insecure to serve it without one anyway")
    log.warning("%s with --insecure: anyone who can reach this server can use it (and its GPU) without a login",
                " and ".join(exposed))


def redacted_argv(argv: list[str]) -> list[str]:
    """``argv`` with the passwords of --gradio-auth / --api-auth replaced by ***, for log lines."""
    secret_flags = ("--gradio-auth", "--api-auth")

    def hide(accounts: str) -> str:
        return ",".join(f"{item.partition(':')[0]}:***" for item in accounts.split(","))

    out = []
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if eq and flag in secret_flags:
            arg = f"{flag}={hide(value)}"
        elif i and argv[i - 1] in secret_flags:
            arg = hide(arg)
        out.append(arg)
    return out


def server_port(args: argparse.Namespace) -> int:
    """--port, else A1111's defaults: 7860 for the UI, 7861 for the API alone (--nowebui)."""
    return args.port if args.port is not None else 7861 if args.nowebui else 7860


def build_api_config(args: argparse.Namespace):
    """The REST API's config, or None when it is off (neither --api nor --nowebui)."""
    if not (args.api or args.nowebui):
        return None
    from webui.api import ApiConfig

    auth = parse_auth(args.api_auth, "--api-auth") or parse_auth(args.gradio_auth) or []  # UI login guards it too
    if args.share and args.nowebui:
        log.warning("--share needs the UI; with --nowebui the API is served locally only")
    return ApiConfig(auth=tuple(auth), cmd_flags=vars(args))


if __name__ == "__main__":
    main()
