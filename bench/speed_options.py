"""The speed options the benchmark's after-figures measure, and whether this tree and this CPU have them.

Each option is reached the way a user reaches it: a launch flag of ``launch.py`` (read from its
``--help``, so a flag that has not landed is *detected* as missing) or an A1111 option sent per job in
``override_settings`` (read from the running server's ``GET /sdapi/v1/options``). Each is compared with
today's default (fp32, Euler, CFG 7, the full VAE) at the same size and steps.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.harness import REPO_ROOT
from bench.speed_raw import Job

TAESD_OPTION = "sd_vae_decode_method"


@dataclass(frozen=True)
class Variant:
    """One after-figure: launch flags, per-job options and job changes against the fp32 default."""

    key: str
    label: str
    goal: str
    flags: tuple[str, ...] = ()  # launch.py flags (a server of its own)
    overrides: dict[str, Any] = field(default_factory=dict)  # override_settings (on the default server)
    sampler: str | None = None
    cfg_scale: float | None = None
    needs_flag: str | None = None  # the launch flag that must exist
    needs_option: str | None = None  # the /sdapi/v1/options key that must exist
    goal_ratio: float | None = None  # pass when time / default time <= this
    goal_seconds: float | None = None  # pass when the time is under this
    skipped: str = ""  # why it is not run (filled by :func:`plan`)

    def job(self, base: Job) -> Job:
        return replace(base, sampler=self.sampler or base.sampler,
                       cfg_scale=base.cfg_scale if self.cfg_scale is None else self.cfg_scale)

    @property
    def own_server(self) -> bool:
        return bool(self.flags)


def variants(*, with_compile: bool) -> list[Variant]:
    out = [
        Variant("bf16", "bf16 (`--precision bf16`), same steps", "≤ 0.5× fp32 default", ("--precision", "bf16"),
                needs_flag="--precision", goal_ratio=0.5),
        Variant("channels_last", "channels-last (`--channels-last`)", "faster than fp32 default (< 1×)",
                ("--channels-last",), needs_flag="--channels-last", goal_ratio=1.0),
        Variant("lcm_taesd", "4-step LCM-style image, CFG 1, TAESD final decode", "complete image < 10 s",
                overrides={TAESD_OPTION: "TAESD"}, sampler="LCM", cfg_scale=1.0, needs_option=TAESD_OPTION,
                goal_seconds=10.0),
    ]
    if with_compile:
        out.append(Variant("compile", "`--compile` (torch.compile, CPU)", "faster than fp32 default (< 1×)",
                           ("--compile",), needs_flag="--compile", goal_ratio=1.0))
    return out


def launch_flags() -> set[str]:
    """Every ``--flag`` that ``launch.py --help`` lists (it exits before importing torch)."""
    out = subprocess.run([sys.executable, str(REPO_ROOT / "launch.py"), "--help"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120).stdout
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", out))


def native_bf16() -> tuple[bool, str]:
    """Whether this CPU runs bf16 matmuls natively (AVX512-BF16 or AMX), and what said so."""
    import torch

    try:
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            flags = _cpu_flags()
            if flags and not ({"avx512_bf16", "amx_bf16"} & flags):
                return False, "oneDNN emulates bf16 here (no avx512_bf16/amx_bf16 in /proc/cpuinfo)"
            return True, "oneDNN reports native bf16"
    except (AttributeError, RuntimeError):
        pass
    flags = _cpu_flags()
    if {"avx512_bf16", "amx_bf16"} & flags:
        return True, "avx512_bf16/amx_bf16 in /proc/cpuinfo"
    return False, "no avx512_bf16 or amx_bf16 in /proc/cpuinfo"


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def plan(candidates: list[Variant], *, flags: set[str], option_keys: set[str], force_bf16: bool,
         bf16_native: tuple[bool, str]) -> list[Variant]:
    """The variants with ``skipped`` filled in: not in this tree, or no native bf16 on this CPU."""
    out = []
    for v in candidates:
        why = ""
        if v.needs_flag and v.needs_flag not in flags:
            why = f"not available in this tree (launch.py has no {v.needs_flag})"
        elif v.needs_option and v.needs_option not in option_keys:
            why = f"not available in this tree (no option {v.needs_option} in /sdapi/v1/options)"
        elif v.key == "bf16" and not bf16_native[0] and not force_bf16:
            why = f"skipped: no native bf16 on this CPU ({bf16_native[1]}; --force-bf16 runs it anyway)"
        out.append(replace(v, skipped=why))
    return out
