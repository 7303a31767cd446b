"""The speed benchmark's table (markdown: each figure, its goal, pass/fail) and its JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Series

SERVED_GOAL = 1.03  # Atelier end to end within 1.03x of raw diffusers
FIRST_IMAGE_SLACK_S = 2.0  # first image after start within raw's load + first image + 2 s


@dataclass
class Row:
    """One line of the table: Atelier's figure, what it is compared with, the goal and the verdict."""

    figure: str
    atelier_s: float | None
    baseline_s: float | None = None
    baseline_label: str = ""
    comparison: str = ""  # "1.03×" or "+1.2 s"
    goal: str = ""
    passed: bool | None = None  # None: no goal or not measured
    note: str = ""


@dataclass
class Report:
    """Everything one run measured."""

    config: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    series: dict[str, Series] = field(default_factory=dict)
    identity: dict[str, int] = field(default_factory=dict)  # worst max abs pixel diff vs raw, per contender
    extras: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    total_s: float = 0.0


def ratio_row(figure: str, atelier: Series, raw: Series, *, goal: float) -> Row:
    r = atelier.median / raw.median
    return Row(figure, atelier.median, raw.median, "raw diffusers in-process", f"{r:.3f}×", f"≤ {goal:.2f}×",
               r <= goal, f"min {atelier.min:.2f} / {raw.min:.2f} s = {atelier.min / raw.min:.3f}×")


def slack_row(figure: str, atelier: Series, raw: Series, *, slack: float) -> Row:
    d = atelier.median - raw.median
    return Row(figure, atelier.median, raw.median, "raw diffusers: start, load + first image", f"{d:+.1f} s",
               f"≤ raw + {slack:.0f} s", d <= slack, f"{atelier.median / raw.median:.2f}×")


def skipped_row(figure: str, why: str, goal: str) -> Row:
    return Row(figure, None, goal=goal, note=why)


def _seconds(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"


def _verdict(row: Row) -> str:
    if row.atelier_s is None:
        return "not run"
    return "—" if row.passed is None else ("pass" if row.passed else "FAIL")


def print_report(report: Report) -> None:
    c = report.config
    print(f"\n## Atelier speed ({c['model']}, {c['threads']} threads, medians of {c['repeats']} interleaved runs)\n")
    print(f"Table: {c['size']}², {c['steps']} steps, Euler, CFG 7, seed {c['seed']}. "
          f"After-figures: {c['after_size']}², {c['steps']} steps, against Atelier's fp32 default "
          "(Euler, CFG 7, full VAE) in the same rounds.\n")
    print("| figure | Atelier | compared with | | goal | result | note |")
    print("|---|---|---|---|---|---|---|")
    for row in report.rows:
        base = f"{_seconds(row.baseline_s)} ({row.baseline_label})" if row.baseline_label else _seconds(row.baseline_s)
        print(f"| {row.figure} | {_seconds(row.atelier_s)} | {base} | {row.comparison} | {row.goal} | {_verdict(row)} "
              f"| {row.note} |")
    ident = report.identity
    if ident:
        worst = max(ident.values())
        verdict = "pixel-identical" if worst == 0 else ("max abs diff <= 1" if worst <= 1 else "DIFFERENT")
        print(f"\nTable images against raw diffusers' image: {verdict} (max abs diff per contender: {ident})")
    for key, value in report.extras.items():
        print(f"{key}: {value}")
    env = report.environment
    print(f"\nload average {env.get('load_start')} -> {env.get('load_end')}; CPUs {env.get('cpus')}; "
          f"torch {env.get('torch')}; whole run {report.total_s / 60:.1f} min")
    if env.get("load_start") and env["load_start"][0] > 1.5 * c["threads"]:
        print("NOTE: the machine was busy (load average above the threads used): wall times are noisy, "
              "read the min figures in the notes column")


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": report.config,
        "rows": [asdict(r) for r in report.rows],
        "series": {k: s.to_json() for k, s in report.series.items()},
        "identity_max_abs_diff": report.identity,
        "extras": report.extras,
        "environment": report.environment,
        "total_s": report.total_s,
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {path}")


def failed(report: Report) -> bool:
    """Images differ between Atelier and raw diffusers: the figures compare different work."""
    return bool(report.identity) and max(report.identity.values()) > 1
