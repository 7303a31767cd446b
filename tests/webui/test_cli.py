"""`launch.py generate` runs the same engine without a server, as a user types it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.infotext.codec import parse_infotext
from tests.support.apps import install_models

ROOT = Path(__file__).resolve().parents[2]


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(data_dir / "hf"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "launch.py", "generate", *args, "--data-dir", str(data_dir),
                           "--skip-install", "--threads", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_generate_saves_where_asked_with_infotext_and_is_reproducible(tmp_path, model_store):
    install_models(model_store, tmp_path, ["tiny-sd15"])
    out = tmp_path / "out.png"
    args = ["a castle on a hill", "--steps", "4", "--sampler", "DPM++ 2M", "--seed", "1", "--width", "64",
            "--height", "64", "--ckpt", "tiny-sd15", "--negative", "fog"]
    first = run_cli(tmp_path, *args, "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(out)
    info = parse_infotext(Image.open(out).info["parameters"])
    assert info["Prompt"] == "a castle on a hill" and info["Negative prompt"] == "fog"
    assert (info["Steps"], info["Sampler"], info["Schedule type"], info["Seed"]) == ("4", "DPM++ 2M", "Karras", "1")
    # without --out it saves into outputs/ like the UI, and the same seed gives the same pixels
    second = run_cli(tmp_path, *args)
    assert second.returncode == 0, second.stderr
    saved = Path(second.stdout.strip())
    assert saved.parent.parent.name == "txt2img-images" and saved.name.endswith("-1.png")
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(saved)))


def test_batch_writes_numbered_files(tmp_path, model_store):
    install_models(model_store, tmp_path, ["tiny-sd15"])
    result = run_cli(tmp_path, "a cat", "--steps", "2", "--width", "64", "--height", "64", "--batch-size", "2",
                     "--seed", "5", "--ckpt", "tiny-sd15", "--out", str(tmp_path / "cat.png"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "cat-1.png"), str(tmp_path / "cat-2.png")]
    assert "Seed: 6" in Image.open(tmp_path / "cat-2.png").info["parameters"]


def test_bad_input_exits_nonzero_with_a_clear_message(tmp_path, model_store):
    install_models(model_store, tmp_path, ["tiny-sd15"])
    bad_size = run_cli(tmp_path, "x", "--width", "100", "--ckpt", "tiny-sd15")
    assert bad_size.returncode == 2 and "width: must be a multiple of 8" in bad_size.stderr
    assert "Traceback" not in bad_size.stderr
    bad_sampler = run_cli(tmp_path, "x", "--sampler", "Nope", "--ckpt", "tiny-sd15")
    assert bad_sampler.returncode == 2 and "unknown sampler 'Nope'" in bad_sampler.stderr
    missing = run_cli(tmp_path, "x", "--ckpt", "not-installed")
    assert missing.returncode == 2 and "no model named 'not-installed'" in missing.stderr
