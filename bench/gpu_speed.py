"""GPU speed: raw diffusers, Atelier's default path and Atelier with ``--compile``, on full-size random-weight models.

    python bench/gpu_speed.py                                  # CUDA: SD1.5 at 512², SDXL at 1024², 20 steps
    python bench/gpu_speed.py --arch sd15 --compile-mode max-autotune --json $OUT/gpu_speed.json
    python bench/gpu_speed.py --tiny --device cpu --steps 2 --skip-compiled   # smoke check on a CPU (tiny models)

On a 2-core CPU the compiled contender's first job (inductor compiling C++ kernels for the tiny UNet and VAE
decoder, channels-last) took 502 s on a loaded machine: leave it out of smoke checks with ``--skip-compiled``.

Each architecture is built from its published configs (written below, from the SD1.5 and SDXL-base repositories'
``*/config.json``) with random weights, straight on the device, saved once as a diffusers folder (the form Atelier
loads) and loaded from it by every contender. Speed does not depend on the weights' values. The tokenizer is the
tests' hand-written CLIP tokenizer (every prompt is padded to 77 tokens, as SD does). Nothing is downloaded.

Per contender (batch 1, CFG 7, Euler, fixed seed, images not saved): warm-up jobs, then ``--repeats`` pairs of a
1-step and a ``--steps``-step job. Sampler speed is ``(steps - 1) / (t_steps - t_1)`` on the medians, so text
encoding, the VAE decode and the PIL conversion cancel out; "image" is the median ``--steps`` job's wall time,
VAE included. For the compiled contender, "compile" is its first job minus its median job of the same size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.sd_configs import CLIP_G, CLIP_L, SD15_UNET, SD15_VAE, SDXL_UNET, SDXL_VAE  # noqa: E402

SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 steps_offset=1, prediction_type="epsilon")
SIZES = {"sd15": 512, "sdxl": 1024}
PROMPT = "a lighthouse on a cliff at dusk, oil painting"
NEGATIVE = "blurry"  # not empty: diffusers zeroes an empty SDXL negative prompt, A1111 (and Atelier) encode it


def build_folder(arch: str, folder: Path, *, device: torch.device, dtype: torch.dtype) -> Path:
    """A full-size random-weight ``arch`` pipeline saved as a diffusers folder (weights initialised on ``device``)."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from tests.support.tiny_models import write_clip_tokenizer

    torch.manual_seed(0)
    tokenizer = CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(folder.parent / f"{arch}-tokenizer")))
    with torch.device(device):  # random init on the GPU: seconds, not minutes
        if arch == "sd15":
            parts = dict(unet=UNet2DConditionModel(**SD15_UNET), vae=AutoencoderKL(**SD15_VAE),
                         text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L)))
        else:
            parts = dict(unet=UNet2DConditionModel(**SDXL_UNET), vae=AutoencoderKL(**SDXL_VAE),
                         text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L)),
                         text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G)))
    parts = {name: module.to(dtype) for name, module in parts.items()}
    if arch == "sd15":
        scheduler = EulerDiscreteScheduler(**SCHEDULER)
        pipe = StableDiffusionPipeline(**parts, tokenizer=tokenizer, scheduler=scheduler, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
    else:
        scheduler = EulerDiscreteScheduler(**SCHEDULER, timestep_spacing="leading")
        pipe = StableDiffusionXLPipeline(**parts, tokenizer=tokenizer, tokenizer_2=tokenizer, scheduler=scheduler)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def tiny_folder(arch: str, folder: Path) -> Path:
    from tests.support.tiny_models import save_sd15_folder, save_sdxl_folder

    return (save_sd15_folder if arch == "sd15" else save_sdxl_folder)(folder, seed=0)


@dataclass
class Figures:
    """One contender's numbers on one architecture."""

    arch: str
    contender: str
    size: int
    steps: int
    it_per_s: float
    image_s: float
    first_job_s: float
    compile_s: float | None = None
    detail: str = ""
    diff_vs_raw: float | None = None  # mean abs pixel difference of the --steps image against raw diffusers'


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(run: Callable[[int], object], *, steps: int, repeats: int, warmups: int, device: torch.device
            ) -> tuple[float, float, float]:
    """(it/s, median image seconds, first job seconds) for ``run(steps)``."""
    def timed(n: int) -> float:
        sync(device)
        started = time.perf_counter()
        run(n)
        sync(device)
        return time.perf_counter() - started

    first = timed(steps)
    for _ in range(warmups):
        timed(steps)
        timed(1)
    ones, fulls = [], []
    for _ in range(repeats):
        ones.append(timed(1))
        fulls.append(timed(steps))
    full, one = statistics.median(fulls), statistics.median(ones)
    return (steps - 1) / max(full - one, 1e-9), full, first


def raw_runner(arch: str, folder: Path, device: torch.device, dtype: torch.dtype, size: int) -> Callable[[int], object]:
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionPipeline if arch == "sd15" else StableDiffusionXLPipeline
    extra = {"safety_checker": None, "requires_safety_checker": False} if arch == "sd15" else {}
    pipe = cls.from_pretrained(str(folder), dtype=dtype, local_files_only=True, **extra).to(device)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)  # A1111's "Euler", as Atelier's job
    pipe.set_progress_bar_config(disable=True)

    def run(steps: int) -> object:
        return pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=steps, guidance_scale=7.0, width=size,
                    height=size, generator=torch.Generator("cpu").manual_seed(1)).images[0]

    return run


def atelier_runner(folder: Path, data_dir: Path, device: torch.device, size: int, **speed) -> tuple[Callable, str]:
    from pipelines.context import AppContext
    from pipelines.requests import Txt2ImgRequest
    from pipelines.settings import Settings

    models = data_dir / "models" / "Stable-diffusion"
    models.mkdir(parents=True, exist_ok=True)
    link = models / folder.name
    if not link.exists():
        link.symlink_to(folder, target_is_directory=True)
    extra = {"no_hashing": True} if "no_hashing" in Settings.__dataclass_fields__ else {}
    settings = Settings(data_dir=data_dir, device=device.type, hub_offline=True, hf_cache_dir=data_dir / "hf",
                        live_preview_every=0, **extra, **speed)
    ctx = AppContext.build(settings)
    loaded = ctx.selection.select(folder.name)

    def run(steps: int) -> object:
        request = Txt2ImgRequest(prompt=PROMPT, negative_prompt=NEGATIVE, steps=steps, cfg_scale=7.0, width=size,
                                 height=size, seed=1, sampler_name="Euler", model=folder.name, save_images=False)
        return ctx.engine.generate(request).images[0].image

    return run, ctx.store.status(loaded)


def bench_arch(arch: str, args: argparse.Namespace, work: Path) -> list[Figures]:
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    size = args.size or (64 if args.tiny else SIZES[arch])
    folder = work / f"{arch}-random"
    started = time.perf_counter()
    if not (folder / "model_index.json").exists():
        tiny_folder(arch, folder) if args.tiny else build_folder(arch, folder, device=device, dtype=dtype)
    print(f"[{arch}] model folder ready in {time.perf_counter() - started:.1f} s ({folder})", flush=True)
    contenders: list[tuple[str, Callable[[], tuple[Callable, str]]]] = [
        ("raw diffusers", lambda: (raw_runner(arch, folder, device, dtype, size), "diffusers defaults (SDPA)")),
        ("Atelier default", lambda: atelier_runner(folder, work / "data-default", device, size)),
    ]
    if not args.skip_compiled:
        contenders.append(("Atelier compiled", lambda: atelier_runner(
            folder, work / "data-compiled", device, size, compile=True, compile_mode=args.compile_mode,
            channels_last=True)))
    out: list[Figures] = []
    reference = None
    for name, make in contenders:
        run, detail = make()
        warmups = args.warmups + (2 if name.endswith("compiled") and device.type == "cuda" else 0)  # CUDA graphs
        it_s, image_s, first = measure(run, steps=args.steps, repeats=args.repeats, warmups=warmups, device=device)
        compile_s = first - image_s if name.endswith("compiled") else None
        image = np.asarray(run(args.steps)).astype(np.int16)
        reference = image if reference is None else reference
        diff = float(np.abs(image - reference).mean())
        figures = Figures(arch, name, size, args.steps, it_s, image_s, first, compile_s, detail, diff)
        print(f"[{arch}] {name:17s} {it_s:8.2f} it/s   {args.steps}-step image {image_s:7.3f} s   first job "
              f"{first:7.2f} s" + (f"   compile ~{compile_s:.1f} s" if compile_s is not None else "")
              + f"   image vs raw: mean abs diff {diff:.2f}   ({detail})", flush=True)
        out.append(figures)
        del run
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--arch", action="append", choices=["sd15", "sdxl"], help="default: both")
    p.add_argument("--tiny", action="store_true", help="the tests' tiny models (a smoke check, e.g. on a CPU)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--size", type=int, help="image side (default 512 SD1.5, 1024 SDXL; 64 with --tiny)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmups", type=int, default=1)
    p.add_argument("--compile-mode", default="max-autotune",
                   help="Atelier compiled's --compile-mode (reduce-overhead compiles faster: CUDA graphs, "
                        "no autotuning)")
    p.add_argument("--skip-compiled", action="store_true")
    p.add_argument("--work-dir", type=Path, help="where the model folders go (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="also write every figure here")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device: use --device cpu (with --tiny for a smoke check)")
    if args.steps < 2:
        p.error("--steps must be at least 2 (it/s comes from the difference to a 1-step job)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {name}; steps {args.steps}, batch 1, CFG 7, Euler", flush=True)
    with tempfile.TemporaryDirectory(prefix="atelier-gpu-bench-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        figures = [f for arch in (args.arch or ["sd15", "sdxl"]) for f in bench_arch(arch, args, work)]
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in figures], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
