"""Speed where users run it: Atelier against raw diffusers on a full-size SD1.5 architecture, and the
speed options against today's fp32 default (issue 14's table and after-figures, in one run).

    .venv/bin/python -m bench.speed                      # full size, medians of 3 (~21 min on 2 quiet cores)
    .venv/bin/python -m bench.speed --quick              # 1 run of everything at 128², a smoke check
    .venv/bin/python -m bench.speed --tiny --quick       # the tests' tiny model: checks the wiring only
    .venv/bin/python -m bench.speed --json bench/results/speed.json --work-dir /var/tmp/atelier-speed

1. Models: a full-size SD1.5-architecture checkpoint with random weights is built under ``--work-dir``
   the first time (``bench/speed_models.py``, ~1 min, 4.3 GB) and reused; nothing is downloaded.
2. The table (256², 4 steps, Euler, CFG 7, fixed seed): Atelier started as users start it
   (``launch.py --api`` for "UI and API served", ``--nowebui``), jobs through A1111's
   ``POST /sdapi/v1/txt2img`` end to end, against raw diffusers in this process; and the first image
   after start (spawn to image, a fresh data folder, so nothing is cached) against a fresh raw diffusers
   process (spawn, import, load, first image), with the model files evicted from the page cache first
   ("cold") or read just before ("warm"). Every image is checked against raw diffusers' pixels.
3. The after-figures (512², 4 steps): the options of ``bench/speed_options.py`` through their launch
   flags and ``override_settings``, each against Atelier's fp32 default in the same rounds.

Contenders run in interleaved rounds whose order rotates; medians are reported, minimums beside them.
At most two full-size pipelines are alive at once (this process's raw pipeline and one server, or two
servers), ~4.3 GB each. Servers that are not running a job are frozen (SIGSTOP).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # ``python bench/speed.py`` as well as ``python -m bench.speed``
    sys.path.insert(0, str(REPO_ROOT))

from bench.harness import (  # noqa: E402
    Contender,
    Series,
    Timings,
    load_avg,
    max_abs_diff,
    now,
    quiet_environment,
    run_rounds,
    silence_libraries,
    since,
)
from bench.speed_after import measure_after  # noqa: E402
from bench.speed_models import Models, ensure_models, evict, files_under, resident_fraction  # noqa: E402
from bench.speed_options import launch_flags  # noqa: E402
from bench.speed_procs import AtelierServer, first_image_after_start, raw_first_image, rest_contender  # noqa: E402
from bench.speed_raw import Job, generate, load_pipeline  # noqa: E402
from bench.speed_report import (  # noqa: E402
    FIRST_IMAGE_SLACK_S,
    SERVED_GOAL,
    Report,
    failed,
    print_report,
    ratio_row,
    slack_row,
    write_json,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "atelier-speed",
                   help="holds the built models (reused when present) and the servers' data folders")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per contender (medians)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads, for every contender")
    p.add_argument("--size", type=int, default=256, help="the table's width and height")
    p.add_argument("--after-size", type=int, default=512, help="the after-figures' width and height")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--quick", action="store_true", help="1 run of everything at 128², no warm-up: a smoke check")
    p.add_argument("--tiny", action="store_true", help="the tests' tiny SD1.5 model instead of the full size")
    p.add_argument("--only", choices=["table", "first", "after"], default=None,
                   help="run one part only (first: the table's first-image rows)")
    p.add_argument("--with-compile", action="store_true",
                   help="also measure --compile (torch.compile on CPU; its compile time is printed)")
    p.add_argument("--force-bf16", action="store_true",
                   help="measure bf16 even on a CPU without native bf16 (hours at full size on AVX2)")
    p.add_argument("--drop-caches", action="store_true",
                   help="also write 3 to /proc/sys/vm/drop_caches for the cold rows (the whole machine's cache)")
    p.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.size, args.after_size = 1, 128, 128
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    args.warmup = 0 if args.quick else 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    quiet_environment(args.threads, work_dir)
    started = time.perf_counter()
    load_start = load_avg()
    import torch

    torch.set_num_threads(args.threads)
    silence_libraries()
    models = ensure_models(work_dir, tiny=args.tiny)
    # fp32 pinned where the flag exists: on a CPU with native bf16 `--precision auto` picks bf16, and the
    # table compares Atelier with raw diffusers' fp32 pixel for pixel, the after-figures with the fp32 default
    args.fp32_flags = ("--precision", "fp32") if "--precision" in launch_flags() else ()
    runs = Path(tempfile.mkdtemp(prefix="runs-", dir=work_dir))  # servers' data folders, removed at the end
    print(f"Atelier speed benchmark · {models.name} ({models.size_bytes() / 1e9:.2f} GB) in {models.folder}")
    print(f"python {platform.python_version()} · torch {torch.__version__} · {os.cpu_count()} CPUs · "
          f"{args.threads} threads · load avg {load_start}")
    if not args.tiny:  # the table: ~16 s for one 256² image on a quiet 2-core machine, ~20 s to start
        _print_estimate(args, 16.0 * (args.size / 256) ** 2.2, 20.0, "at issue 14's figures for a quiet machine; "
                        "printed again from measured figures after the first rows")
    report = Report(config={"model": models.name, "tiny": args.tiny, "threads": args.threads,
                            "repeats": args.repeats, "size": args.size, "after_size": args.after_size,
                            "steps": args.steps, "seed": args.seed, "quick": args.quick})
    try:
        if args.only in (None, "table", "first"):
            reference = _first_images(args, models, runs, report)
        if args.only in (None, "table"):
            _estimate_after_first_images(args, report, time.perf_counter() - started)
            _served(args, models, runs, report, reference)
        if args.only in (None, "after"):
            measure_after(args, models, runs, report)
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    report.environment = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                          "load_start": load_start, "load_end": load_avg()}
    report.total_s = time.perf_counter() - started
    print_report(report)
    if args.json:
        write_json(report, args.json)
    return 2 if failed(report) else 0


def _table_job(args: argparse.Namespace) -> Job:
    return Job(width=args.size, height=args.size, steps=args.steps, cfg_scale=7.0, sampler="Euler", seed=args.seed)


# ----------------------------------------------------------------------- first image after start
def _first_images(args: argparse.Namespace, models: Models, runs: Path, report: Report) -> Any:
    """Spawn -> first image, Atelier (UI + API) against a raw diffusers process, files evicted or cached;
    returns raw diffusers' image, the reference every later table image is compared with."""
    job = _table_job(args)
    residency: dict[str, list[float]] = {"cold": [], "warm": []}
    counter = iter(range(10**6))

    def prepare(state: str) -> None:
        if state == "cold":
            residency["cold"].append(evict(models.folder, drop_caches=args.drop_caches))
        else:
            for path in files_under(models.folder):  # read once: in the page cache, as after a previous run
                with path.open("rb") as fh:
                    while fh.read(1 << 24):
                        pass
            residency["warm"].append(resident_fraction(models.folder))

    def atelier(state: str) -> Contender:
        def run() -> tuple[Timings, Any]:
            prepare(state)
            gc.collect()
            wall, image, split = first_image_after_start(
                model_name=models.name, ckpt_parent=models.ckpt_parent, threads=args.threads, job=job, webui=True,
                data_dir=runs / f"start-{state}-{next(counter)}", flags=args.fp32_flags)
            report.extras.setdefault(f"Atelier start split ({state}, s)", []).append(
                {k: round(v, 2) for k, v in split.items()})
            return {f"atelier_first_{state}": (wall, 0.0)}, image
        return Contender(f"atelier_first_{state}", run)

    def raw(state: str) -> Contender:
        def run() -> tuple[Timings, Any]:
            prepare(state)
            out = runs / f"raw-{state}-{next(counter)}.png"
            wall, image, split = raw_first_image(folder=models.folder, out=out, threads=args.threads, job=job)
            report.extras.setdefault(f"raw process split ({state}, s)", []).append(
                {k: round(v, 2) for k, v in split.items() if k.endswith("_s")})
            return {f"raw_first_{state}": (wall, 0.0)}, image
        return Contender(f"raw_first_{state}", run)

    contenders = [raw("cold"), atelier("cold"), raw("warm"), atelier("warm")]
    series = {c.key: Series(c.key) for c in contenders}
    print(f"\nfirst image after start ({args.size}², UI + API): {args.repeats} interleaved rounds ...", flush=True)
    run_rounds(contenders, series, warmup=0, repeats=args.repeats)
    report.series.update(series)
    reference = contenders[0].images[0]
    for c in contenders:
        report.identity[c.key] = max(max_abs_diff(reference, im) for im in c.images)
    report.extras["page cache after eviction (fraction resident, cold runs)"] = [round(x, 3) for x in residency["cold"]]
    report.extras["page cache before warm runs (fraction resident)"] = [round(x, 3) for x in residency["warm"]]
    report.rows.append(slack_row("first image after start, model files not in the page cache",
                                 series["atelier_first_cold"], series["raw_first_cold"], slack=FIRST_IMAGE_SLACK_S))
    report.rows.append(slack_row("first image after start, model files in the page cache",
                                 series["atelier_first_warm"], series["raw_first_warm"], slack=FIRST_IMAGE_SLACK_S))
    return reference


def planned_work(args: argparse.Namespace) -> tuple[float, int]:
    """What the run does, in (images of the table's size, process starts); a 512² image counts
    ~(512/256)^2.2 table images, the LCM job (CFG 1, TAESD) about half a 512² one."""
    images, starts = 0.0, 0
    if args.only in (None, "table", "first"):
        images += 4 * args.repeats
        starts += 4 * args.repeats
    if args.only in (None, "table"):
        images += 2 * 2 * args.repeats  # (the served rows' warm-ups run at 64²)
        starts += 2
    if args.only in (None, "after"):
        from bench.speed_options import native_bf16

        flags = launch_flags()
        own = ("--channels-last" in flags) + (args.with_compile and "--compile" in flags) + (
            "--precision" in flags and (args.force_bf16 or native_bf16()[0]))  # servers of their own
        per_round = 2 * own + 0.45 if own else 1.45
        # the first jobs run at 64², except --compile's (it compiles for the shape)
        images += (args.repeats * per_round + (args.with_compile and "--compile" in flags)) * (
            args.after_size / args.size) ** 2.2
        starts += 1 + own
    return images, starts


def _print_estimate(args: argparse.Namespace, image_s: float, start_s: float, source: str,
                    done: tuple[float, int] = (0.0, 0)) -> None:
    images, starts = planned_work(args)
    rest = (images - done[0]) * image_s + (starts - done[1]) * start_s
    print(f"expected {'duration' if done == (0.0, 0) else 'time for the rest'}: about {rest / 60:.0f} min "
          f"({images - done[0]:.0f} images of {args.size}² at {image_s:.1f} s, {starts - done[1]} process starts "
          f"at {start_s:.0f} s; {source})", flush=True)


def _estimate_after_first_images(args: argparse.Namespace, report: Report, elapsed: float) -> None:
    """The rest of the run, from what the first rows measured in the raw diffusers processes."""
    splits = report.extras.get("raw process split (warm, s)") or []
    if not splits:
        return
    gen = statistics.median(s["generate_s"] for s in splits)
    serving = report.extras.get("Atelier start split (warm, s)") or []  # the rest's starts are Atelier servers
    start = statistics.median([s["until_serving_s"] for s in serving] or
                              [s["import_s"] + s["load_s"] for s in splits])
    print(f"\nfirst rows took {elapsed / 60:.1f} min", end="; ")
    _print_estimate(args, gen, start, "measured in this run's first rows",
                    done=(4 * args.repeats, 4 * args.repeats))


# ---------------------------------------------------------------------------- served, warm
def _served(args: argparse.Namespace, models: Models, runs: Path, report: Report, reference: Any) -> None:
    """REST jobs on a running server (UI + API, then API only) against raw diffusers in this process."""
    job = _table_job(args)
    t0 = time.perf_counter()
    pipe = load_pipeline(models.folder, job.sampler)
    print(f"\nraw diffusers pipeline loaded in this process ({time.perf_counter() - t0:.1f}s)", flush=True)
    try:
        for webui, key, figure in ((True, "ui", "UI and API served (`--api`), REST end to end"),
                                   (False, "nowebui", "`--nowebui`, REST end to end")):
            server = AtelierServer(model_name=models.name, ckpt_parent=models.ckpt_parent, data_dir=runs / key,
                                   threads=args.threads, webui=webui, flags=args.fp32_flags)
            try:
                up = server.wait_up()
                server.freeze()
                print(f"\n{figure}: server up in {up:.1f}s (not timed); {args.warmup} warm-up (64²) + "
                      f"{args.repeats} interleaved rounds ...", flush=True)
                small = replace(job, width=64, height=64)  # what a first job sets up, at little cost
                for _ in range(args.warmup):
                    _raw_contender(pipe, small, "warm-up").run()
                    rest_contender(server, small, "warm-up").run()
                contenders = [_raw_contender(pipe, job, f"raw_{key}"), rest_contender(server, job, f"atelier_{key}")]
                series = {c.key: Series(c.key) for c in contenders}
                run_rounds(contenders, series, warmup=0, repeats=args.repeats)
            finally:
                server.close()
            report.series.update(series)
            for c in contenders:
                report.identity[c.key] = max(max_abs_diff(reference, im) for im in c.images)
            report.rows.insert(len([r for r in report.rows if "served" in r.figure or "nowebui" in r.figure]),
                               ratio_row(figure, series[f"atelier_{key}"], series[f"raw_{key}"], goal=SERVED_GOAL))
    finally:
        del pipe
        gc.collect()


def _raw_contender(pipe, job: Job, key: str) -> Contender:
    def run() -> tuple[Timings, Any]:
        start = now()
        image = generate(pipe, job)
        return {key: since(start)}, image
    return Contender(key, run)


if __name__ == "__main__":
    sys.exit(main())
