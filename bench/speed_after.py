"""The after-figures: each speed option against Atelier's fp32 default, in the same interleaved rounds.

One ``launch.py --nowebui`` server runs the default (fp32, Euler, CFG 7, full VAE) and the per-job
options (``override_settings``); an option that is a launch flag gets a server of its own, started
while the default one is frozen and closed before the next (two full-size servers at most). A row
whose flag or option is missing from this tree says so instead of a figure.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import replace
from pathlib import Path

from bench.harness import Series, max_abs_diff, run_rounds
from bench.speed_models import DONE_MARK, Models
from bench.speed_options import Variant, launch_flags, native_bf16, plan, variants
from bench.speed_procs import AtelierServer, rest_contender
from bench.speed_raw import Job
from bench.speed_report import Report, Row, skipped_row


def mean_abs_diff(a, b) -> float:
    import numpy as np

    x = np.asarray(a.convert("RGB"), dtype=np.float32)
    y = np.asarray(b.convert("RGB"), dtype=np.float32)
    return float(np.abs(x - y).mean()) if x.shape == y.shape else float("nan")


def install_taesd(models: Models, data_dir: Path) -> None:
    """The random AutoencoderTiny where Atelier looks for TAESD (``models/VAE-taesd/taesd``), as a user puts
    madebyollin/taesd's folder there."""
    target = data_dir / "models" / "VAE-taesd" / "taesd"
    if not target.exists():
        shutil.copytree(models.taesd, target, ignore=shutil.ignore_patterns(DONE_MARK))


def measure_after(args: argparse.Namespace, models: Models, runs: Path, report: Report) -> None:
    size = args.after_size
    base_job = Job(width=size, height=size, steps=args.steps, cfg_scale=7.0, sampler="Euler", seed=args.seed)
    flags = launch_flags()
    install_taesd(models, runs / "after-default")
    default = AtelierServer(model_name=models.name, ckpt_parent=models.ckpt_parent, data_dir=runs / "after-default",
                            threads=args.threads, webui=False, flags=args.fp32_flags)
    try:
        up = default.wait_up()
        planned = plan(variants(with_compile=args.with_compile), flags=flags, option_keys=default.option_keys(),
                       force_bf16=args.force_bf16, bf16_native=native_bf16())
        default.freeze()
        print(f"\nafter-figures ({size}², {args.steps} steps): default server up in {up:.1f}s (not timed); "
              + "; ".join(f"{v.key}: {v.skipped or 'measured'}" for v in planned), flush=True)
        runnable = [v for v in planned if not v.skipped]
        per_job = [v for v in runnable if not v.own_server]
        groups: list[Variant | None] = [v for v in runnable if v.own_server] or [None]
        figures: dict[str, dict] = {}
        defaults = Series("default")
        for i, own in enumerate(groups):
            figures.update(_group(args, models, runs, default, base_job, own, per_job if i == 0 else [], i, report))
            defaults.wall += report.series[f"default#{i}"].wall
            defaults.cpu += report.series[f"default#{i}"].cpu
    finally:
        default.close()
    report.rows.append(Row(f"{size}² {args.steps} steps, fp32 default (the after-figures' baseline)", defaults.median,
                           goal="reference", note=f"min {defaults.min:.2f} s"))
    for v in planned:
        report.rows.append(_row(v, figures.get(v.key)) if not v.skipped else skipped_row(v.label, v.skipped, v.goal))


def _group(args: argparse.Namespace, models: Models, runs: Path, default: AtelierServer, base_job: Job,
           own: Variant | None, per_job: list[Variant], index: int, report: Report) -> dict[str, dict]:
    """Rounds of the default against one flag variant (its own server) and the per-job variants."""
    server = None
    specs: list[tuple[AtelierServer, Job, str, dict | None]] = [(default, base_job, f"default#{index}", None)]
    try:
        if own is not None:
            server = AtelierServer(model_name=models.name, ckpt_parent=models.ckpt_parent, data_dir=runs / own.key,
                                   threads=args.threads, webui=False,
                                   flags=own.flags if own.key == "bf16" else (*args.fp32_flags, *own.flags))
            up = server.wait_up()
            server.freeze()
            print(f"  {own.key}: server with {' '.join(own.flags)} up in {up:.1f}s (not timed)", flush=True)
            specs.append((server, own.job(base_job), own.key, None))
        specs += [(default, v.job(base_job), v.key, v.overrides) for v in per_job]
        contenders = [rest_contender(*spec) for spec in specs]
        first: dict[str, float] = {}
        for srv, job, key, overrides in specs:
            # one untimed first job each, at 64² (what a first job sets up: a TAESD load, lazy imports) except
            # for --compile, which compiles for the job's shape: that one's time is the compile time's measure
            warm = job if key == "compile" else replace(job, width=64, height=64)
            t0 = time.perf_counter()
            rest_contender(srv, warm, key, overrides).run()
            first[key] = time.perf_counter() - t0
        series = {c.key: Series(c.key) for c in contenders}
        run_rounds(contenders, series, warmup=0, repeats=args.repeats)
    finally:
        if server is not None:
            server.close()
    report.series.update(series)
    reference = contenders[0].images[0]
    out = {}
    for c in contenders[1:]:
        base = series[f"default#{index}"]
        out[c.key] = {"series": series[c.key], "default": base, "first_s": first[c.key],
                      "max_abs_diff": max_abs_diff(reference, c.images[-1]),
                      "mean_abs_diff": mean_abs_diff(reference, c.images[-1])}
    report.extras[f"after-figures first job (s; 64², --compile's at full size), group {index}"] = {
        k: round(v, 2) for k, v in first.items()}
    return out


def _row(v: Variant, fig: dict | None) -> Row:
    if fig is None:
        return skipped_row(v.label, "not measured", v.goal)
    s, base = fig["series"], fig["default"]
    ratio = s.median / base.median
    note = (f"min {s.min:.2f} s; image vs fp32 default: max abs diff {fig['max_abs_diff']}, "
            f"mean {fig['mean_abs_diff']:.2f}")
    if v.key == "compile":
        note += f"; first job (compiles) {fig['first_s']:.1f} s: compile ≈ {fig['first_s'] - s.median:.1f} s"
    if v.key == "lcm_taesd":
        note = f"min {s.min:.2f} s; another job than the default (LCM, CFG 1): no image comparison"
    passed = s.median < v.goal_seconds if v.goal_seconds is not None else ratio <= (v.goal_ratio or 1.0)
    return Row(v.label, s.median, base.median, "fp32 default, same rounds", f"{ratio:.3f}×", v.goal, passed, note)
