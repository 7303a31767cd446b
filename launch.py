"""Atelier's entry point: the one place that reads argv, the environment and installs.

    python launch.py [--listen] [--share] [--port 7860] [--ckpt NAME_OR_HUB_ID] ...

Flag names follow AUTOMATIC1111's webui where one exists.
"""

from __future__ import annotations

import argparse
import importlib.metadata
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
    add_core_arguments(p)
    return p


def add_core_arguments(p: argparse.ArgumentParser) -> None:
    """Flags that shape the core (data, models, device); shared by the server and `generate`."""
    paths = p.add_argument_group("data")
    paths.add_argument("--data-dir", type=Path, default=ROOT,
                       help="holds models/, outputs/ and caches (default: the project folder)")
    paths.add_argument("--ckpt", metavar="NAME_OR_HUB_ID", help="model to load at start-up")
    paths.add_argument("--ckpt-dir", type=Path, action="append", default=[], help="extra folder of checkpoints")
    paths.add_argument("--vae-dir", type=Path, action="append", default=[], help="extra folder of VAEs")
    paths.add_argument("--lora-dir", type=Path, action="append", default=[], help="extra folder of LoRAs")
    paths.add_argument("--embeddings-dir", type=Path, action="append", default=[],
                       help="extra folder of textual-inversion embeddings")
    paths.add_argument("--extensions-dir", type=Path, default=None,
                       help="where extensions are installed (default: DATA_DIR/extensions)")
    paths.add_argument("--disable-all-extensions", action="store_true",
                       help="load no extension, built-in ones included (they stay installed)")
    paths.add_argument("--disable-extra-extensions", action="store_true",
                       help="load only the built-in extensions, none of those installed")
    paths.add_argument("--allow-pickle", action="store_true",
                       help="also load pickled .ckpt/.pt/.bin weights (weights_only); off by default")
    perf = p.add_argument_group("performance")
    perf.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    perf.add_argument("--xformers", action="store_true", help="use xformers attention on CUDA (installed if missing)")
    perf.add_argument("--opt-sdp-attention", action="store_true", help="use PyTorch SDPA attention (the default)")
    perf.add_argument("--opt-split-attention", action="store_true", help="use sliced attention (less memory)")
    perf.add_argument("--medvram", action="store_true", help="offload whole models to RAM between uses")
    perf.add_argument("--lowvram", action="store_true", help="offload layer by layer (slowest, least VRAM)")
    perf.add_argument("--no-half", action="store_true", help="run in fp32 even on a GPU")
    perf.add_argument("--precision", type=precision_arg, default="auto", metavar="{auto,fp32,bf16,fp16}",
                      help="model dtype: auto = fp16 on a GPU, bf16 on a CPU with native bf16, else fp32 "
                           "(A1111's full, half and autocast are fp32, fp16 and auto)")
    perf.add_argument("--channels-last", action="store_true", help="UNet and VAE in channels-last memory format")
    perf.add_argument("--compile", action="store_true",
                      help="torch.compile the UNet and VAE decoder (slow first image per size, faster after)")
    perf.add_argument("--compile-mode", default="auto",
                      choices=["auto", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                      help="torch.compile mode (auto: max-autotune with CUDA graphs on CUDA, default elsewhere)")
    perf.add_argument("--compile-backend", default="inductor", choices=["inductor", "eager", "cudagraphs"],
                      help="torch.compile backend: inductor builds kernels for this machine (needs a C++ compiler); "
                           "eager only traces (a quick check that a model compiles)")
    perf.add_argument("--threads", type=int, help="torch CPU threads")
    misc = p.add_argument_group("misc")
    misc.add_argument("--skip-install", action="store_true", help="never pip-install missing requirements")
    misc.add_argument("--no-hashing", action="store_true",
                      help="never hash checkpoints (faster first load; no Model hash in the infotext)")
    misc.add_argument("--log-level", default="INFO")


def precision_arg(value: str) -> str:
    """``--precision``: Atelier's names or A1111's (full, half, autocast)."""
    from pipelines.settings import parse_precision  # stdlib only: parsed before the requirements are installed

    try:
        return parse_precision(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


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


def parse_size(text: str) -> tuple[int, int]:
    """``"768x512"`` -> (768, 512), for ``--seed-resize-from``."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 768x512, got {text!r}")
    return int(width), int(height)


def build_generate_parser(prog: str = "launch.py generate",
                          description: str = "Generate images from the command line with the same core (no server)"
                          ) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("prompt", nargs="?", default="", help="the prompt (none for an unconditional DDPM model)")
    job = p.add_argument_group("generation")
    job.add_argument("--negative", default="", help="negative prompt")
    job.add_argument("--steps", type=int, help="sampling steps (default 20; an unconditional DDPM model: all its "
                                               "training steps)")
    job.add_argument("--sampler", help='an A1111 sampler name, e.g. "DPM++ 2M" (default "Euler a"; an unconditional '
                                       'model: DDPM or DDIM, default DDPM)')
    job.add_argument("--scheduler", default="Automatic", help="schedule type: Automatic, Karras, Exponential, ...")
    job.add_argument("--cfg-scale", "--cfg", type=float, default=7.0)
    job.add_argument("--width", type=int, default=512)
    job.add_argument("--height", type=int, default=512)
    job.add_argument("--seed", type=int, default=-1, help="-1 for random")
    job.add_argument("--subseed", type=int, default=-1, help="variation seed (-1 for random)")
    job.add_argument("--subseed-strength", type=float, default=0.0,
                     help="variation strength, 0-1 (0: the seed alone; 1: the variation seed alone)")
    job.add_argument("--seed-resize-from", metavar="WxH", type=parse_size, default=(0, 0),
                     help="resize seed from this size (A1111's 'Resize seed from width/height'); 0x0: off")
    job.add_argument("--style", dest="styles", action="append", default=[],
                     help="a style from styles.csv, applied to both prompts (repeatable)")
    job.add_argument("--batch-size", type=int, default=1)
    job.add_argument("--batch-count", type=int, default=1)
    job.add_argument("--refiner", metavar="NAME", help="SDXL refiner checkpoint that takes over the last steps")
    job.add_argument("--refiner-switch-at", type=float, default=0.8,
                     help="fraction of the steps after which the refiner takes over (with --refiner; 1: never)")
    job.add_argument("--vae", default="Automatic", metavar="NAME",
                     help="SD VAE: Automatic (NAME.vae.safetensors beside the checkpoint, else its own), None (the "
                          "checkpoint's own) or a VAE's file name in models/VAE")
    job.add_argument("--out", type=Path, help="write here (NAME-1.png, NAME-2.png ... for several images) "
                                               "instead of outputs/txt2img-images/")
    job.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_core_arguments(p)
    p.set_defaults(log_level="WARNING")  # the paths on stdout and progress on stderr are the output
    return p


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


def txt2img_request(args: argparse.Namespace):
    """The txt2img request the `generate` flags describe."""
    from pipelines.requests import Refiner, Txt2ImgRequest

    return Txt2ImgRequest(
        prompt=args.prompt, negative_prompt=args.negative, sampler_name=args.sampler or Txt2ImgRequest.sampler_name,
        scheduler=args.scheduler, steps=args.steps if args.steps is not None else Txt2ImgRequest.steps,
        cfg_scale=args.cfg_scale, width=args.width, height=args.height, seed=args.seed,
        batch_size=args.batch_size, n_iter=args.batch_count, model=args.ckpt, save_images=args.out is None,
        sd_vae=args.vae,
        subseed=args.subseed, subseed_strength=args.subseed_strength, seed_resize_from_w=args.seed_resize_from[0],
        seed_resize_from_h=args.seed_resize_from[1], styles=tuple(args.styles),
        refiner=Refiner(args.refiner, args.refiner_switch_at) if args.refiner else None,
    )


def generate_main(argv: list[str]) -> int:
    """`launch.py generate PROMPT [...]`: one txt2img job, paths printed, non-zero on bad input."""
    args = build_generate_parser().parse_args(argv)
    ctx = prepare(args)
    from webui.cli import model_defaults, run_txt2img

    sampler, steps = model_defaults(ctx, args.ckpt)  # an unconditional model's own when the flags are not given
    args.sampler, args.steps = args.sampler or sampler, args.steps if args.steps is not None else steps
    return run_txt2img(ctx, txt2img_request(args), out=args.out, quiet=args.quiet)


def imagine_main(argv: list[str]) -> int:
    """`launch.py imagine PROMPT [--n 4] [...]`: a batch saved with its grid; the grid's path, then each image's."""
    parser = build_generate_parser("launch.py imagine", "Midjourney-style: a batch of --n images and their grid, "
                                   "saved in outputs/ (the grid's path is printed first, then each image's)")
    parser.add_argument("--n", type=int, default=4, help="images in the grid (1-8)")
    args = parser.parse_args(argv)
    if args.out is not None:
        parser.error("--out: imagine saves the grid and its images in outputs/")
    ctx = prepare(args)
    from pipelines.imagine import imagine_request
    from webui.cli import run_txt2img

    return run_txt2img(ctx, imagine_request(txt2img_request(args), args.n), out=None, quiet=args.quiet,
                       print_grid=True)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:
        raise SystemExit(generate_main(argv[1:]))
    if argv[:1] == ["imagine"]:
        raise SystemExit(imagine_main(argv[1:]))
    args = build_parser().parse_args(argv)
    check_exposure(args)
    ctx = prepare(args)
    if args.ckpt:  # a checkpoint saved by /sdapi/v1/options is only selected, and loaded on first use
        # Loaded beside the server's imports and page build (the second core, the disk), not before them; a job
        # arriving meanwhile waits for this load in the store instead of starting another.
        threading.Thread(target=load_initial_checkpoint, args=(ctx, args.ckpt), name="atelier-ckpt-load",
                         daemon=True).start()
    from webui.server import serve

    host = bind_host(args)
    api = build_api_config(args)
    if args.nowebui:
        from webui.server import serve_api

        server = serve_api(ctx, host=host, port=server_port(args), api=api, block=False)
    else:
        server, _, _ = serve(ctx, host=host, port=server_port(args), share=args.share,
                             auth=parse_auth(args.gradio_auth), block=False, api=api, restart=restart_process)
    from pipelines.lazy_diffusers import warm_up

    threading.Thread(target=warm_up, name="atelier-warm-up", daemon=True).start()
    server.block_thread()


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
