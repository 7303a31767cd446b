"""`launch.py generate` runs the same engine without a server, as a user types it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.infotext.codec import parse_infotext
from tests.support.apps import install_models

ROOT = Path(__file__).resolve().parents[2]


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(data_dir / "hf"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "launch.py", "generate", *args, "--data-dir", str(data_dir),
                           "--skip-install", "--threads", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """``launch.py generate`` in this process (``generate_main`` with the entry point's own ``prepare``): the
    parsing, settings, context and output of the real command without a fresh interpreter's imports per run.
    The first test runs the real command line once."""
    import launch
    from webui.cli_commands import generate_main

    def run(data_dir: Path, *args: str) -> Ran:
        for name, value in {"HF_HUB_OFFLINE": "1", "HF_HOME": str(data_dir / "hf"),
                            "GRADIO_TEMP_DIR": str(data_dir / ".gradio_tmp")}.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            code = generate_main([*args, "--data-dir", str(data_dir), "--skip-install", "--threads", "1"],
                                 prepare=launch.prepare)
        except SystemExit as exc:  # argparse refusing a flag
            code = exc.code
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def test_generate_saves_where_asked_with_infotext_and_is_reproducible(tmp_path, model_store, cli):
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
    second = cli(tmp_path, *args)
    assert second.returncode == 0, second.stderr
    saved = Path(second.stdout.strip())
    assert saved.parent.parent.name == "txt2img-images" and saved.name.endswith("-1.png")
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(saved)))


def test_batch_writes_numbered_files(tmp_path, model_store, cli):
    install_models(model_store, tmp_path, ["tiny-sd15"])
    result = cli(tmp_path, "a cat", "--steps", "2", "--width", "64", "--height", "64", "--batch-size", "2",
                     "--seed", "5", "--ckpt", "tiny-sd15", "--out", str(tmp_path / "cat.png"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "cat-1.png"), str(tmp_path / "cat-2.png")]
    assert "Seed: 6" in Image.open(tmp_path / "cat-2.png").info["parameters"]


def test_bad_input_exits_nonzero_with_a_clear_message(tmp_path, model_store, cli):
    install_models(model_store, tmp_path, ["tiny-sd15"])
    bad_size = cli(tmp_path, "x", "--width", "100", "--ckpt", "tiny-sd15")
    assert bad_size.returncode == 2 and "width: must be a multiple of 8" in bad_size.stderr
    assert "Traceback" not in bad_size.stderr
    bad_sampler = cli(tmp_path, "x", "--sampler", "Nope", "--ckpt", "tiny-sd15")
    assert bad_sampler.returncode == 2 and "unknown sampler 'Nope'" in bad_sampler.stderr
    missing = cli(tmp_path, "x", "--ckpt", "not-installed")
    assert missing.returncode == 2 and "no model named 'not-installed'" in missing.stderr


def test_variation_seed_style_and_lora_flags_reach_the_job(tmp_path, model_store, cli):
    """The A1111 recipe fields (and --vae) from the command line give the image the core gives for the same request."""
    from dataclasses import replace

    from pipelines.context import AppContext
    from pipelines.requests import Txt2ImgRequest
    from tests.support.apps import make_settings
    from tests.support.tiny_loras import save_kohya_lora_for
    from tests.support.tiny_networks import save_vae_file

    install_models(model_store, tmp_path, ["tiny-sd15"])
    save_kohya_lora_for(model_store / "tiny-sd15", tmp_path / "models" / "Lora" / "inkwash.safetensors", seed=1)
    (tmp_path / "styles.csv").write_text('name,prompt,negative_prompt\nmoody,"{prompt}, moody light",fog\n')
    save_vae_file(tmp_path / "models" / "VAE" / "cli-vae.safetensors", seed=41, layout="original")
    out = tmp_path / "fox.png"
    result = cli(tmp_path, "a fox <lora:inkwash:0.7>", "--steps", "2", "--width", "64", "--height", "64",
                     "--seed", "5", "--subseed", "9", "--subseed-strength", "0.4", "--seed-resize-from", "96x80",
                     "--style", "moody", "--sampler", "Euler", "--ckpt", "tiny-sd15", "--vae", "cli-vae.safetensors",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    info = parse_infotext(Image.open(out).info["parameters"])
    assert info["Prompt"] == "a fox <lora:inkwash:0.7>, moody light" and info["Negative prompt"] == "fog"
    assert (info["Variation seed"], info["Variation seed strength"], info["Seed resize from"]) == ("9", "0.4", "96x80")
    assert info["Lora hashes"].startswith("inkwash: ") and info["VAE"] == "cli-vae.safetensors"
    ctx = AppContext.build(make_settings(tmp_path, hub_offline=True))
    request = Txt2ImgRequest(prompt="a fox <lora:inkwash:0.7>", styles=("moody",), steps=2, width=64, height=64,
                             seed=5, subseed=9, subseed_strength=0.4, seed_resize_from_w=96, seed_resize_from_h=80,
                             sampler_name="Euler", model="tiny-sd15", sd_vae="cli-vae.safetensors", save_images=False)
    same = ctx.engine.generate(request).images[0].image
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(same))
    other = ctx.engine.generate(replace(request, subseed_strength=0.0)).images[0].image
    assert not np.array_equal(np.asarray(other), np.asarray(same))


def test_a_malformed_size_flag_is_refused_by_the_parser(tmp_path, cli):
    bad = cli(tmp_path, "x", "--seed-resize-from", "96by80")
    assert bad.returncode == 2 and "expected WIDTHxHEIGHT such as 768x512, got '96by80'" in bad.stderr


def test_imagine_writes_the_grid_and_prints_it_then_the_four_images(tmp_path, model_store, capsys, monkeypatch):
    import launch
    from webui.cli_commands import imagine_main

    install_models(model_store, tmp_path, ["tiny-sd15"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    code = imagine_main(["a castle on a hill", "--seed", "3", "--steps", "1", "--width", "64", "--height", "64",
                         "--quiet", "--data-dir", str(tmp_path), "--skip-install", "--threads", "1"],
                        prepare=launch.prepare)
    lines = capsys.readouterr().out.split()
    assert code == 0 and len(lines) == 5
    grid, *images = map(Path, lines)
    assert grid.parent.parent.name == "txt2img-grids" and [p.name[-6:] for p in images] == [
        "-3.png", "-4.png", "-5.png", "-6.png"]
    with Image.open(grid) as picture, Image.open(images[0]) as first:
        assert picture.size == (128, 128) and picture.info["parameters"] == first.info["parameters"]


def test_generate_on_an_unconditional_model_needs_no_prompt_and_defaults_to_ddpm(tmp_path, cli):
    from tests.support.tiny_seed_models import save_ddpm_folder

    save_ddpm_folder(tmp_path / "models" / "Stable-diffusion" / "tiny-ddpm")
    out = tmp_path / "ddpm.png"
    ran = cli(tmp_path, "--ckpt", "tiny-ddpm", "--steps", "3", "--seed", "5", "--out", str(out), "--quiet")
    assert ran.returncode == 0, ran.stderr
    info = parse_infotext(Image.open(out).info["parameters"])
    assert [info[k] for k in ("Sampler", "Steps", "Seed", "Size-1", "Model")] == ["DDPM", "3", "5", "16", "tiny-ddpm"]
    ddim = cli(tmp_path, "a prompt", "--ckpt", "tiny-ddpm", "--sampler", "DDIM", "--steps", "3", "--seed", "5",
               "--out", str(tmp_path / "ddim.png"), "--quiet")
    assert ddim.returncode == 0 and "the prompt is not used" in ddim.stderr
    assert not np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(tmp_path / "ddim.png")))
