"""The txt2img benchmark's printed report, its verdicts on the targets, and its JSON file."""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Series, load_avg

E2E_TARGET = 1.05  # end to end within 1.05x of raw diffusers
SWAP_TARGET_MS = 50.0  # cached swap under 50 ms


@dataclass
class Results:
    """Everything one benchmark run measured."""

    args: argparse.Namespace
    model: str
    series: dict[str, Series]
    rounds: list[dict[str, float]]  # wall seconds per series key, per timed round
    identity: dict[str, int]  # worst max abs pixel diff vs raw's first image, per contender
    worst: int
    identity_verdict: str
    infotext_ok: bool  # every e2e download carries the core's infotext
    swap: dict[str, Any]
    breakdown: dict[str, float]
    settle_cpu: list[float]  # server CPU seconds after each e2e answer (untimed)
    idle_server_ms_per_s: float
    first_load_s: float
    environment: dict[str, Any] = field(default_factory=dict)
    total_s: float = 0.0


def report(results: Results) -> int:
    """Print the report (and write the JSON when asked); 0 if the images matched, else 2."""
    ratios, noise = _print_table(results)
    _print_where_time_goes(results, noise)
    _print_checks(results)
    targets = _print_targets(results, ratios)
    env = results.environment
    print(f"\nload average {env['load_start']} -> {env['load_end']}; whole run {results.total_s:.0f}s")
    if results.args.json:
        _write_json(results, ratios, noise, targets)
    return 0 if results.worst <= 1 else 2


def _labels(args: argparse.Namespace) -> dict[str, str]:
    return {
        "raw": "raw diffusers (PIL, no save)",
        "raw_save": "raw diffusers + PNG save",
        "core_off": "Atelier core, previews off",
        "core_on": f"Atelier core, previews every {args.preview_every}",
        "e2e_on": f"Atelier e2e gradio_client, previews {args.preview_every}",
        "e2e_off": "Atelier e2e gradio_client, previews off",
        "e2e_http": f"Atelier e2e plain HTTP, previews {args.preview_every}",
        "e2e_rest": f"Atelier e2e REST /sdapi/v1, previews {args.preview_every}",
    }


def _print_table(results: Results) -> tuple[dict[str, dict[str, float]], float]:
    """One line per series with its ratios to raw diffusers; returns the ratios and the noise."""
    args, series = results.args, results.series
    raw, raw_save = series["raw"], series["raw_save"]
    labels = _labels(args)
    print(f"\n{args.width}x{args.height}, {args.steps} steps, Euler a, CFG {args.cfg_scale:g}, seed {args.seed}, "
          f"model {results.model}, {args.threads} thread(s), {args.repeats} timed runs each")
    header = (f"{'contender':<38}{'median s':>9}{'min s':>8}{'cpu s':>8}{'x raw':>7}{'x raw+save':>11}"
              f"{'x (min)':>8}{'x (cpu)':>8}")
    print(header)
    print("-" * len(header))
    ratios: dict[str, dict[str, float]] = {}
    for key, s in series.items():
        ratios[key] = {"vs_raw": s.median / raw.median, "vs_raw_save": s.median / raw_save.median,
                       "vs_raw_save_min": s.min / raw_save.min,
                       "vs_raw_save_cpu": s.cpu_median / raw_save.cpu_median,
                       "vs_raw_save_paired": statistics.median(r[key] / r["raw_save"] for r in results.rounds)}
        print(f"{labels[key]:<38}{s.median:>9.3f}{s.min:>8.3f}{s.cpu_median:>8.3f}{ratios[key]['vs_raw']:>7.3f}"
              f"{ratios[key]['vs_raw_save']:>11.3f}{ratios[key]['vs_raw_save_min']:>8.3f}"
              f"{ratios[key]['vs_raw_save_cpu']:>8.3f}")
    print("x raw, x raw+save: ratio of medians · x (min): ratio of minimums vs raw+save · "
          "x (cpu): ratio of median CPU seconds vs raw+save (e2e CPU = client + server process)")
    noise = max(s.median / s.min - 1 for s in series.values())
    return ratios, noise


def _print_where_time_goes(results: Results, noise: float) -> None:
    args, series = results.args, results.series

    def diff(a: str, b: str) -> str:
        """Extra time of ``a`` over ``b``: from the minimums (and the medians)."""
        return (f"{(series[a].min - series[b].min) * 1e3:+.0f} ms "
                f"({(series[a].median - series[b].median) * 1e3:+.0f} median)")

    print("\nwhere the time goes, from the minimums (medians in brackets):")
    print(f"  PNG save with infotext (raw)             {diff('raw_save', 'raw')}")
    print(f"  Atelier core vs raw+save, previews off   {diff('core_off', 'raw_save')} = "
          f"{(series['core_off'].min - series['raw_save'].min) * 1e3 / args.steps:+.1f} ms/step")
    print(f"  live previews in the core                {diff('core_on', 'core_off')}")
    if "e2e_http" in series:
        print(f"  server + plain HTTP on top of the core   {diff('e2e_http', 'core_on')}")
    if "e2e_rest" in series:
        print(f"  server + A1111 REST API on top of core   {diff('e2e_rest', 'core_on')}")
    if "e2e_on" in series and "e2e_http" in series:
        print(f"  gradio_client on top of plain HTTP       {diff('e2e_on', 'e2e_http')}")
    if "e2e_on" in series and "e2e_off" in series:
        print(f"  previews through gradio_client           {diff('e2e_on', 'e2e_off')}")
    settle = statistics.median(results.settle_cpu) * 1e3 if results.settle_cpu else 0.0
    print(f"  e2e includes downloading the PNG ({'infotext intact' if results.infotext_ok else 'INFOTEXT DIFFERS'}); "
          f"server CPU after answering (untimed) {settle:.0f} ms; "
          f"idle server {results.idle_server_ms_per_s:.0f} ms CPU/s")
    if noise > 0.10:
        print(f"  NOTE: wall times are noisy (median up to {noise:.0%} above min; load avg {load_avg()}): "
              "trust the x (min) and x (cpu) columns over the medians")


def _print_checks(results: Results) -> None:
    """Same image everywhere, model swap times, per-job pieces."""
    swap = results.swap
    print(f"\nsame image everywhere: {results.identity_verdict} "
          f"(max abs diff vs raw's first image, per contender: {results.identity})")
    if swap:
        print(f"model swap: cold load {swap['cold_ms']:.0f} ms "
              f"(raw from_pretrained {swap['raw_from_pretrained_ms']:.0f} ms; files in the OS page cache) · "
              f"cached swap median {swap['cached_median_ms']:.3f} ms, "
              f"max {swap['cached_max_ms']:.3f} ms over {swap['cached_iterations']}"
              + (f" · UI endpoint /select_checkpoint: gradio_client {swap['cached_http_median_ms']:.0f} ms, "
                 f"plain HTTP {swap['cached_plain_http_median_ms']:.0f} ms" if "cached_http_median_ms" in swap else ""))
    if results.breakdown:
        print("Atelier per-job pieces (median ms): " + ", ".join(f"{k} {v:.2f}" for k, v in results.breakdown.items()))


def _print_targets(results: Results, ratios: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Verdicts: end to end within E2E_TARGET x raw+save (ratio of minimums), cached swap under SWAP_TARGET_MS."""
    series, labels, swap = results.series, _labels(results.args), results.swap
    targets: dict[str, Any] = {}
    for key in ("e2e_on", "e2e_http", "e2e_rest"):
        if key not in ratios:
            continue
        r = ratios[key]
        e2e_ratio = r["vs_raw_save_min"]  # minimums: the least disturbed runs of each contender
        met = e2e_ratio <= E2E_TARGET
        targets[f"{key}_within_1.05x_raw_save"] = met
        print(f"{chr(10) if key == 'e2e_on' else ''}TARGET end to end ({labels[key]}) <= {E2E_TARGET}x "
              f"raw diffusers+save: "
              f"{e2e_ratio:.3f}x -> {'target met' if met else 'not met'}  (medians {r['vs_raw_save']:.3f}x; "
              f"vs raw without save {series[key].min / series['raw'].min:.3f}x; "
              f"paired per round {r['vs_raw_save_paired']:.3f}x; CPU {r['vs_raw_save_cpu']:.3f}x)")
    if swap:
        met = swap["cached_median_ms"] < SWAP_TARGET_MS
        targets["cached_swap_under_50ms"] = met
        print(f"TARGET cached swap < {SWAP_TARGET_MS:.0f} ms: {swap['cached_median_ms']:.3f} ms -> "
              f"{'target met' if met else 'not met'}")
        if "swap_first_step_median_ms" in swap:
            added = swap["swap_first_step_median_ms"] - swap["same_first_step_median_ms"]
            met = added < SWAP_TARGET_MS
            targets["cached_swap_to_first_step_under_50ms"] = met
            print(f"TARGET cached swap including the first step adds < {SWAP_TARGET_MS:.0f} ms: generate() to the "
                  f"first step {swap['swap_first_step_median_ms']:.1f} ms after a swap vs "
                  f"{swap['same_first_step_median_ms']:.1f} ms on the same model: +{added:.1f} ms -> "
                  f"{'target met' if met else 'not met'}")
    if results.worst > 1:
        print("WARNING: the contenders produced different images; the timings compare different work")
    return targets


def _write_json(results: Results, ratios: dict[str, dict[str, float]], noise: float,
                targets: dict[str, Any]) -> None:
    args = results.args
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                   if not k.startswith(("serve_child", "child_"))},
        "model": results.model,
        "environment": results.environment,
        "series": {k: s.to_json() for k, s in results.series.items()},
        "ratios": ratios,
        "noise_median_over_min": noise,
        "rounds": results.rounds,
        "identity": {"max_abs_diff": results.identity, "verdict": results.identity_verdict,
                     "e2e_infotext_intact": results.infotext_ok},
        "server": {"idle_cpu_ms_per_s": results.idle_server_ms_per_s,
                   "cpu_after_result_ms": [x * 1e3 for x in results.settle_cpu],
                   "frozen_during_baselines": not args.no_freeze_server},
        "swap": results.swap,
        "first_load_s": results.first_load_s,
        "breakdown_ms": results.breakdown,
        "targets": targets,
        "total_s": results.total_s,
    }
    args.json.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.json}")
