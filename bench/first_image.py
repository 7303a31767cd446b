"""First image after start: Atelier before and after hashing moved beside the load, against raw diffusers.

```
.venv/bin/python -m bench.first_image --before <commit> --after <commit>   # minutes; builds a 1.7 GB model once
```

The checkpoint is a diffusers folder whose UNet is full-size SD1.5 (random weights, seed 0, saved in fp16:
1.7 GB, the file whose sha256 is ``Model hash``); its text encoder (one CLIP layer of width 768) and VAE are
tiny, so the figures are the UNet's read, hash and load plus a first image. Each contender runs as a fresh
process (imports included), with a fresh data folder (no ``cache.json``: the hash is computed, as on a
model's first start), the file either evicted from the page cache (``os.sync`` + ``posix_fadvise(DONTNEED)``,
and ``/proc/sys/vm/drop_caches`` when writable) or read into it first. Atelier's two versions are
``git archive``d from the commits given, so only their difference is measured; a fourth contender runs
the newer one with ``--no-hashing`` (what hashing costs at all). Job: 256x256, ``--steps`` (4), Euler,
CFG 7, seed 1234, saved as PNG (Atelier writes the infotext, waiting for the hash if needed).

Compare the totals: raw diffusers imports diffusers' pipeline modules before its "load", Atelier imports
them lazily inside its load (about as long as reading the weights on a loaded 2-core machine).

Not run in CI. The machine is shared: repeat it and read the spread before trusting a difference.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # a child's "start": before torch and diffusers are imported

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO))  # bench.speed_models; last, so a child's exported code (inserted first) wins
MODEL = "sd15-unet-full"
DONE = ".complete"
RESULT = "FIRST-IMAGE "
# raw diffusers; Atelier before and after the change; after, with --no-hashing (what hashing costs at all)
CONTENDERS = ("raw", "before", "after", "after --no-hashing")
JOB = dict(prompt="a watercolor fox in a misty forest", width=256, height=256, steps=4, cfg_scale=7.0, seed=1234)



# ----------------------------------------------------------------------------------------- model and page cache
def build_model(folder: Path) -> Path:
    """The checkpoint folder (built once; reused when complete)."""
    if (folder / DONE).exists():
        return folder
    sys.path.insert(0, str(REPO))
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from bench.sd_configs import SD15_UNET
    from tests.support.tiny_models import _clip_text_config, _load_tokenizer, _write_pipeline, sd1_scheduler, tiny_vae

    print(f"building {folder} (full-size SD1.5 UNet, random weights) ...", flush=True)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD15_UNET).to(torch.float16)
    vae = tiny_vae()
    text = CLIPTextModel(_clip_text_config(hidden_size=768, hidden_act="quick_gelu", num_hidden_layers=1))
    tokenizer = _load_tokenizer(folder / "tokenizer")
    pipe = StableDiffusionPipeline(vae=vae.half(), text_encoder=text.half(), tokenizer=tokenizer, unet=unet,
                                   scheduler=sd1_scheduler(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    _write_pipeline(pipe, folder)
    (folder / DONE).write_text("ok\n")
    return folder


def evict(folder: Path) -> str:
    """Drop the model's files from the page cache (bench/speed_models.py's eviction, drop_caches too)."""
    from bench.speed_models import evict as evict_files

    left = evict_files(folder, drop_caches=True)
    return f"fadvise + drop_caches ({left:.0%} still cached)"


def warm(folder: Path) -> None:
    from bench.speed_models import files_under

    for path in files_under(folder):
        with path.open("rb") as fh:
            while fh.read(1 << 24):
                pass


# --------------------------------------------------------------------------------------------------- children
def child_atelier(code: Path, model_parent: Path, data: Path, threads: int, job: dict, *, no_hashing: bool) -> dict:
    sys.path.insert(0, str(code))
    import torch

    torch.set_num_threads(threads)
    from pipelines.context import AppContext
    from pipelines.requests import Txt2ImgRequest
    from pipelines.settings import Settings

    imported = time.perf_counter()
    settings = Settings(data_dir=data, ckpt_dirs=(model_parent,), hub_offline=True, hf_cache_dir=data / "hf",
                        live_preview_every=0, torch_threads=threads, **({"no_hashing": True} if no_hashing else {}))
    ctx = AppContext.build(settings)
    built = time.perf_counter()
    ctx.store.load(MODEL)
    loaded = time.perf_counter()
    result = ctx.engine.generate(Txt2ImgRequest(**job, sampler_name="Euler", model=MODEL))
    done = time.perf_counter()
    hashed = "Model hash: " in result.images[0].infotext
    return dict(imports=imported - STARTED, context=built - imported, load=loaded - built, first_image=done - loaded,
                total=done - STARTED, model_hash_in_infotext=hashed)


def child_raw(model: Path, out: Path, threads: int, job: dict) -> dict:
    import torch

    torch.set_num_threads(threads)
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    imported = time.perf_counter()
    pipe = StableDiffusionPipeline.from_pretrained(str(model), torch_dtype=torch.float32, safety_checker=None,
                                                   requires_safety_checker=False, local_files_only=True)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    loaded = time.perf_counter()
    image = pipe(job["prompt"], negative_prompt="", num_inference_steps=job["steps"], width=job["width"],
                 height=job["height"], guidance_scale=job["cfg_scale"],
                 generator=torch.Generator("cpu").manual_seed(job["seed"])).images[0]
    image.save(out)
    done = time.perf_counter()
    return dict(imports=imported - STARTED, context=0.0, load=loaded - imported, first_image=done - loaded,
                total=done - STARTED)


# ------------------------------------------------------------------------------------------ focused: the load only
FOCUSED = ("no hash", "hash, then load (before)", "hash beside the load (after)")


def focused(code: Path, model: Path, work: Path, repeats: int, threads: int) -> dict[str, list[float]]:
    """The store's load alone, in one process (imports done by an untimed first load), with the hash as before the
    change (the whole file hashed, then loaded), as after it (hashed beside the load, then waited for as an image
    saved at once would wait), and without hashing; the UNet evicted from the page cache (cold) or read (warm)."""
    sys.path.insert(0, str(code))
    import gc

    import torch

    torch.set_num_threads(threads)
    from pipelines.models.hashing import sha256_file
    from pipelines.models.store import ModelStore
    from pipelines.settings import Settings

    def store(data: Path, *, no_hashing: bool) -> ModelStore:
        return ModelStore(Settings(data_dir=data, ckpt_dirs=(model.parent,), hub_offline=True, hf_cache_dir=data / "hf",
                                   no_hashing=no_hashing))

    first = store(work / "warm-up", no_hashing=True)
    first.load(MODEL)
    first.unload()
    times: dict[str, list[float]] = {}
    n = 0
    for _ in range(repeats):
        for cache in ("cold", "warm"):
            for how in FOCUSED:
                n += 1
                evict(model) if cache == "cold" else warm(model)
                contender = store(work / f"focused-{n}", no_hashing=how == "no hash")
                started = time.perf_counter()
                if how == FOCUSED[1]:
                    sha256_file(model / "unet" / "diffusion_pytorch_model.safetensors")
                loaded = contender.load(MODEL)
                if how == FOCUSED[2]:
                    assert contender.model_sha256(loaded.record)
                times.setdefault(f"{how} {cache}", []).append(time.perf_counter() - started)
                print(f"  load, {how}, {cache}: {times[f'{how} {cache}'][-1]:.2f}s", flush=True)
                contender.unload()
                del contender, loaded
                gc.collect()
    return times


# ------------------------------------------------------------------------------------------------------ parent
def run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    raise RuntimeError(f"child {args[:2]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def export(commit: str, into: Path) -> Path:
    """The repository's files at ``commit`` (``git archive``), without touching the working tree."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.first_image")
    p.add_argument("--before", help="commit of Atelier before the change (required)")
    p.add_argument("--after", default="HEAD", help="commit of Atelier after it")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "atelier-first-image")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=JOB["steps"], help="sampling steps of the first image")
    p.add_argument("--json", type=Path)
    p.add_argument("--focused", action="store_true", help="only time the store's load in one process (--after's code)")
    p.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    job = {**JOB, "steps": args.steps}
    if args._child:
        kind, *rest = args._child
        if kind == "raw":
            out = child_raw(Path(rest[0]), Path(rest[1]), args.threads, job)
        else:
            out = child_atelier(Path(rest[0]), Path(rest[1]), Path(rest[2]), args.threads, job,
                                no_hashing=rest[3:] == ["no-hashing"])
        print(RESULT + json.dumps(out), flush=True)
        return 0
    if not args.before and not args.focused:
        p.error("--before COMMIT is required")

    model = build_model(args.work / "checkpoints" / MODEL)
    unet_bytes = (model / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size
    runs = args.work / ("focused" if args.focused else "runs")
    shutil.rmtree(runs, ignore_errors=True)
    if args.focused:
        times = focused(export(args.after, runs / "code-after"), model, runs, args.repeats, args.threads)
        print(f"\nthe store's load of the {unet_bytes / 1e9:.2f} GB UNet, medians of {args.repeats}:")
        for key, values in times.items():
            print(f"  {key:40}{statistics.median(values):8.2f}s   ({', '.join(f'{v:.1f}' for v in values)})")
        if args.json:
            args.json.write_text(json.dumps(times, indent=1))
        return 0
    code = {name: export(commit, runs / f"code-{name}") for name, commit in (("before", args.before),
                                                                             ("after", args.after))}
    results: dict[str, list[dict]] = {}
    n = 0
    for repeat in range(args.repeats):
        for cache in ("cold", "warm"):
            for who in CONTENDERS:  # interleaved, so drift in the machine's load spreads evenly
                n += 1
                how = evict(model) if cache == "cold" else (warm(model) or "read first")
                if who == "raw":
                    child = ["--_child", "raw", str(model), str(runs / f"raw-{n}.png")]
                else:
                    version, _, flag = who.partition(" ")
                    child = ["--_child", "atelier", str(code[version]), str(model.parent), str(runs / f"data-{n}"),
                             *([flag.lstrip("-")] if flag else [])]
                out = run_child(["--threads", str(args.threads), "--steps", str(args.steps), *child])
                results.setdefault(f"{who} {cache}", []).append(out)
                print(f"[{repeat + 1}/{args.repeats}] {who:24} {cache} ({how}): "
                      + ", ".join(f"{k} {v:.2f}s" if isinstance(v, float) else f"{k} {v}" for k, v in out.items()),
                      flush=True)
    print(f"\nUNet file {unet_bytes / 1e9:.2f} GB; {args.threads} threads; medians of {args.repeats}; "
          f"256x256, {args.steps} step(s), Euler, CFG 7")
    print(f"{'':30}{'load':>8}{'1st image':>11}{'total':>9}   goal: total <= raw + 2 s")
    for key, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("load", "first_image", "total")}
        print(f"{key:30}{med['load']:8.2f}{med['first_image']:11.2f}{med['total']:9.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
