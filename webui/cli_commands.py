"""The ``generate`` and ``imagine`` subcommands' flags and mains, and the core flags they share with the server.

launch.py reads argv and dispatches here; it hands in its ``prepare`` (installs, environment, settings, app
context), so this module never imports launch.py. Only the standard library is imported at module level:
launch.py builds its parsers before the requirements are installed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.context import AppContext
    from pipelines.requests import Txt2ImgRequest

    Prepare = Callable[[argparse.Namespace], AppContext]

ROOT = Path(__file__).resolve().parents[1]  # the project folder: --data-dir's default


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


def txt2img_request(args: argparse.Namespace) -> Txt2ImgRequest:
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


def generate_main(argv: list[str], *, prepare: Prepare) -> int:
    """`launch.py generate PROMPT [...]`: one txt2img job, paths printed, non-zero on bad input.
    ``prepare`` turns the parsed flags into the app context (launch.py's: installs, environment, settings)."""
    args = build_generate_parser().parse_args(argv)
    ctx = prepare(args)
    from webui.cli import model_defaults, run_txt2img

    sampler, steps = model_defaults(ctx, args.ckpt)  # an unconditional model's own when the flags are not given
    args.sampler, args.steps = args.sampler or sampler, args.steps if args.steps is not None else steps
    return run_txt2img(ctx, txt2img_request(args), out=args.out, quiet=args.quiet)


def imagine_main(argv: list[str], *, prepare: Prepare) -> int:
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
