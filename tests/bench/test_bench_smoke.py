"""The benchmark still runs end to end (a tiny, untimed configuration; figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_txt2img_bench_runs_and_compares_the_same_image(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.txt2img", "--repeats", "1", "--warmup", "0", "--steps", "2", "--width", "64",
         "--height", "64", "--swap-iterations", "3", "--swap-rounds", "1",
         "--no-breakdown", "--no-e2e-off", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "TARGET cached swap" in proc.stdout and "pixel-identical" in proc.stdout
    assert json.loads(out.read_text())
