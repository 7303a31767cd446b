"""--precision (with A1111's full/half/autocast), --channels-last and --compile from the command line to the dtype
and compile mode a device gets; `auto` on this machine's real CPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from launch import build_parser, build_settings
from pipelines.models.compile import compile_mode, compiler_problem
from pipelines.models.device import resolve_precision


def settings(tmp_path, *flags: str):
    return build_settings(build_parser().parse_args(["--data-dir", str(tmp_path), *flags]))


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("fp32", "fp32"), ("bf16", "bf16"), ("fp16", "fp16"),
                                             ("full", "fp32"), ("half", "fp16"), ("autocast", "auto"),
                                             ("BF16", "bf16")])
def test_precision_flag_takes_atelier_and_a1111_names(tmp_path, value, expected):
    assert settings(tmp_path, "--precision", value).precision == expected


def test_unknown_precision_is_refused_naming_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit):
        settings(tmp_path, "--precision", "fp8")
    assert "unknown precision 'fp8'" in capsys.readouterr().err


def test_speed_flags_default_off_and_parse(tmp_path):
    plain = settings(tmp_path)
    assert (plain.precision, plain.channels_last, plain.compile, plain.compile_mode) == ("auto", False, False, "auto")
    fast = settings(tmp_path, "--channels-last", "--compile", "--compile-mode", "reduce-overhead")
    assert (fast.channels_last, fast.compile, fast.compile_mode) == (True, True, "reduce-overhead")


def _cpu_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU flags from /proc/cpuinfo")
def test_auto_on_this_cpu_follows_its_bf16_instructions(tmp_path):
    """The machine's own answer: bf16 only with AMX / AVX512-BF16 / AVX512BW (oneDNN's bf16), else fp32
    (on the AVX2-only dev machine: fp32, since bf16 there is hundreds of times slower)."""
    choice = resolve_precision(torch.device("cpu"), settings(tmp_path, "--precision", "autocast"))
    native = _cpu_flags() & {"amx_bf16", "amx_tile", "avx512_bf16", "avx512bw"}
    assert choice.dtype == (torch.bfloat16 if native else torch.float32), (choice.describe(), native)
    if not native:
        assert "without native bf16" in choice.describe()
    forced = resolve_precision(torch.device("cpu"), settings(tmp_path, "--precision", "bf16"))
    assert forced.dtype == torch.bfloat16 and forced.describe() == "bf16 (bf16: asked for)"


def test_auto_on_accelerators_is_half_unless_no_half(tmp_path):
    cuda = torch.device("cuda")  # a device object only: nothing runs on it
    assert resolve_precision(cuda, settings(tmp_path)).dtype == torch.float16
    assert resolve_precision(torch.device("mps"), settings(tmp_path, "--precision", "half")).dtype == torch.float16
    assert resolve_precision(cuda, settings(tmp_path, "--no-half")).dtype == torch.float32
    assert resolve_precision(cuda, settings(tmp_path, "--precision", "full")).dtype == torch.float32
    assert resolve_precision(torch.device("cpu"), settings(tmp_path, "--no-half")).dtype == torch.float32


def test_compile_mode_auto_uses_cuda_graphs_on_cuda_only():
    assert compile_mode("auto", torch.device("cuda")) == "max-autotune"
    assert compile_mode("auto", torch.device("cpu")) == "default"
    assert compile_mode("reduce-overhead", torch.device("cpu")) == "reduce-overhead"


def test_a_missing_cpp_compiler_is_named(monkeypatch):
    if shutil.which("g++"):
        monkeypatch.delenv("CXX", raising=False)
        assert compiler_problem(torch.device("cpu")) is None
    monkeypatch.setenv("CXX", "no-such-c++")
    assert "needs a C++ compiler" in compiler_problem(torch.device("cpu"))
