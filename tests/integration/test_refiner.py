"""The SDXL refiner through the engine and the CLI, on the tiny SDXL and the tiny SDXL refiner."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from pipelines.context import AppContext
from pipelines.errors import UnsupportedModelError, ValidationError
from pipelines.infotext.codec import parse_infotext
from pipelines.infotext.paste import paste_img2img_parameters, paste_parameters
from pipelines.models.architecture import detect_tensor_names
from pipelines.requests import HiresFix, Img2ImgRequest, Refiner, Txt2ImgRequest
from tests.support.ldm_export import export_sdxl_refiner_single_file, write_sidecar_config

BASE = Txt2ImgRequest(prompt="a lighthouse", negative_prompt="fog", steps=5, width=64, height=64, seed=3,
                      model="tiny-sdxl", save_images=False)


@pytest.fixture(scope="module")
def ctx(refiner_app) -> AppContext:
    return refiner_app["ctx"]


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image, dtype=np.int16)


def test_the_store_lists_the_refiner_as_an_sdxl_refiner_checkpoint(ctx):
    record = ctx.store.find("tiny-sdxl-refiner")
    assert record.kind is not None and record.kind.refiner and record.kind.label == "SDXL refiner"
    assert not ctx.store.find("tiny-sdxl").kind.refiner


def test_refiner_takes_over_the_last_steps(ctx):
    updates = []
    base = ctx.engine.generate(BASE)
    refined = ctx.engine.generate(replace(BASE, refiner=Refiner("tiny-sdxl-refiner", 0.6)), on_progress=updates.append)
    again = ctx.engine.generate(replace(BASE, refiner=Refiner("tiny-sdxl-refiner", 0.6)))
    assert not np.array_equal(pixels(base), pixels(refined))  # the refiner's UNet denoised the last steps
    assert np.array_equal(pixels(refined), pixels(again))  # same seed, same image
    params = parse_infotext(refined.images[0].infotext)
    title = ctx.store.find("tiny-sdxl-refiner").title
    assert params["Refiner"] == title and params["Refiner switch at"] == "0.6" and params["Model"] == "tiny-sdxl"
    steps = [(u.step, u.total) for u in updates if u.unit == "steps"]
    assert steps == [(i, 5) for i in range(1, 6)]  # one bar: base steps, then the refiner's
    assert any("refiner" in u.text for u in updates if u.unit == "steps")
    # both models are held in memory by the store (its byte-counted cache decides what stays)
    assert ctx.store.loaded("tiny-sdxl") is not None and ctx.store.loaded("tiny-sdxl-refiner") is not None


def test_single_file_refiners_are_told_apart_by_their_one_openclip_embedder():
    unet = {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}
    refiner = detect_tensor_names({**unet, "conditioner.embedders.0.model.ln_final.weight": (1280,)})
    base = detect_tensor_names({**unet, "conditioner.embedders.0.transformer.text_model.embeddings.weight": (768,),
                                "conditioner.embedders.1.model.ln_final.weight": (1280,)})
    assert refiner.refiner and refiner.reference_key == "sdxl-refiner" and not base.refiner


def test_a_single_file_refiner_loads_and_refines_as_its_folder_does(ctx, sdxl_refiner):
    folder = ctx.settings.models_dir / "Stable-diffusion"
    file = export_sdxl_refiner_single_file(sdxl_refiner, folder / "tiny-refiner-file.safetensors")
    write_sidecar_config(sdxl_refiner, folder / "tiny-refiner-file.config")
    try:
        ctx.store.refresh()
        assert ctx.store.find("tiny-refiner-file").kind.refiner
        from_folder = ctx.engine.generate(replace(BASE, refiner=Refiner("tiny-sdxl-refiner", 0.6)))
        from_file = ctx.engine.generate(replace(BASE, refiner=Refiner("tiny-refiner-file", 0.6)))
        # the same weights (OpenCLIP's fused q/k/v split back by diffusers: float rounding apart)
        assert np.abs(pixels(from_folder) - pixels(from_file)).max() <= 2
        assert parse_infotext(from_file.images[0].infotext)["Refiner"].startswith("tiny-refiner-file [")
    finally:
        ctx.store.unload(ctx.store.find("tiny-refiner-file").ref.key)
        file.unlink()
        shutil.rmtree(folder / "tiny-refiner-file.config")
        ctx.store.refresh()


def test_img2img_runs_on_the_refiner_itself(ctx):
    init = Image.new("RGB", (64, 64), (90, 140, 200))
    result = ctx.engine.generate(Img2ImgRequest(prompt="a lighthouse", steps=4, width=64, height=64, seed=3,
                                                model="tiny-sdxl-refiner", init_image=init, denoising_strength=0.6,
                                                save_images=False))
    assert parse_infotext(result.images[0].infotext)["Model"] == "tiny-sdxl-refiner"
    pasted = paste_img2img_parameters(parse_infotext("x\nSteps: 4, Seed: 1, Size: 64x64, Refiner: tiny-sdxl-refiner"))
    assert any(note.startswith("Refiner not applied") for note in pasted.notes)


def test_a_second_order_sampler_ends_the_bar_at_the_job_steps(ctx):
    updates = []
    ctx.engine.generate(replace(BASE, sampler_name="Heun", refiner=Refiner("tiny-sdxl-refiner", 0.7)),
                        on_progress=updates.append)
    steps = [u.step for u in updates if u.unit == "steps"]
    assert steps == sorted(steps) and steps[-1] == 5 and all(u.total == 5 for u in updates if u.unit == "steps")


def test_switch_at_one_or_no_refiner_is_the_base_image_exactly(ctx):
    base = ctx.engine.generate(BASE)
    never = ctx.engine.generate(replace(BASE, refiner=Refiner("tiny-sdxl-refiner", 1.0)))
    assert np.array_equal(pixels(base), pixels(never))
    assert "Refiner" not in parse_infotext(never.images[0].infotext)


def test_an_sdxl_checkpoint_refines_too_and_hires_fix_follows_the_refined_first_pass(ctx):
    hires = HiresFix(hr_scale=1.5, hr_second_pass_steps=2, denoising_strength=0.5)
    updates = []
    result = ctx.engine.generate(replace(BASE, hires=hires, refiner=Refiner("tiny-sdxl", 0.5)),
                                 on_progress=updates.append)
    assert result.images[0].image.size == (96, 96)
    params = parse_infotext(result.images[0].infotext)
    assert params["Refiner"] == ctx.store.find("tiny-sdxl").title and params["Hires upscale"] == "1.5"
    assert [(u.step, u.total) for u in updates if u.unit == "steps"][-1] == (7, 7)


def test_paste_restores_the_refiner(ctx):
    refined = ctx.engine.generate(replace(BASE, refiner=Refiner("tiny-sdxl-refiner", 0.6)))
    pasted = paste_parameters(parse_infotext(refined.images[0].infotext), ctx.store)
    assert pasted.fields["refiner"] == Refiner("tiny-sdxl-refiner", 0.6)
    assert not any("Refiner" in note for note in pasted.notes)
    plain = parse_infotext("x\nSteps: 5, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64")
    assert paste_parameters(plain).fields["refiner"] is None  # an image without a refiner turns it off


@pytest.mark.parametrize("refiner, model, field, words", [
    (Refiner("no-such-refiner"), "tiny-sdxl", "refiner_checkpoint", ["no-such-refiner"]),
    (Refiner("tiny-sd15"), "tiny-sdxl", "refiner_checkpoint", ["tiny-sd15", "SD 1.x", "tiny-sdxl", "SDXL"]),
    (Refiner("tiny-sdxl-refiner"), "tiny-sd15", "refiner_checkpoint", ["tiny-sdxl-refiner", "tiny-sd15"]),
    (Refiner("tiny-sdxl-refiner", 0), "tiny-sdxl", "refiner_switch_at", ["above 0"]),
    (Refiner("tiny-sdxl-refiner", 1.5), "tiny-sdxl", "refiner_switch_at", ["at most 1"]),
])
def test_bad_refiners_are_refused_naming_the_field(ctx, refiner, model, field, words):
    with pytest.raises(ValidationError) as caught:
        ctx.engine.generate(replace(BASE, model=model, refiner=refiner))
    assert caught.value.field == field and all(w in caught.value.message for w in words), caught.value.message


def test_the_refiner_as_the_main_model_is_a_clear_error(ctx):
    with pytest.raises(UnsupportedModelError, match="tiny-sdxl-refiner is an SDXL refiner"):
        ctx.engine.generate(replace(BASE, model="tiny-sdxl-refiner"))


def test_cli_refiner_flags(ctx, tmp_path, capsys):
    from webui.cli_commands import generate_main

    def prepare(args):
        return ctx  # the module's context: its models are loaded
    out = tmp_path / "refined.png"
    args = ["generate", "a lighthouse", "--negative", "fog", "--steps", "5", "--width", "64", "--height", "64",
            "--seed", "3", "--ckpt", "tiny-sdxl", "--refiner", "tiny-sdxl-refiner", "--refiner-switch-at", "0.6",
            "--data-dir", str(ctx.settings.data_dir), "--skip-install", "--threads", "1", "--quiet",
            "--out", str(out)]
    assert generate_main(args[1:], prepare=prepare) == 0, capsys.readouterr().err
    engine = ctx.engine.generate(replace(BASE, refiner=Refiner("tiny-sdxl-refiner", 0.6)))
    assert np.array_equal(np.asarray(Image.open(out), dtype=np.int16), pixels(engine))
    assert parse_infotext(Image.open(out).info["parameters"])["Refiner switch at"] == "0.6"
    assert generate_main([*args[1:-2], "--refiner-switch-at", "2"], prepare=prepare) == 2
    assert "refiner_switch_at" in capsys.readouterr().err
