"""The X/Y/Z plot's value syntax and axes (A1111's ranges, quoted CSV, LoRA weight, Denoising) and its reading of
A1111's positional script_args; no model needed."""

from __future__ import annotations

import sys

import pytest

from pipelines.extension_host.loader import BUILTIN_DIR, load_one
from pipelines.hooks.registry import ExtensionRegistry
from pipelines.requests import HiresFix, Img2ImgRequest, Txt2ImgRequest


@pytest.fixture(scope="module")
def xyz():
    report = load_one(ExtensionRegistry(), BUILTIN_DIR / "xyz_plot", builtin=True)
    assert report.status == "loaded", report.error
    return sys.modules["atelier_extensions.xyz_plot"], sys.modules["atelier_extensions.xyz_plot.axes"]


@pytest.mark.parametrize(("label", "text", "values"), [
    ("Steps", "1-5", [1, 2, 3, 4, 5]),
    ("Steps", "10-1 (-3)", [10, 7, 4, 1]),
    ("Seed", "1, 5, 9", [1, 5, 9]),
    ("CFG Scale", "1-2 [5]", [1.0, 1.25, 1.5, 1.75, 2.0]),
    ("CFG Scale", "3.5, 7", [3.5, 7.0]),
    ("Sampler", 'Euler a, "DPM++ 2M, weird", DDIM', ["Euler a", "DPM++ 2M, weird", "DDIM"]),
])
def test_values_are_read_as_a1111_reads_them(xyz, label, text, values):
    _, axes = xyz
    assert axes.axis(label, "txt2img").values(text) == values


def test_bad_values_and_axes_are_refused(xyz):
    _, axes = xyz
    with pytest.raises(ValueError, match="'many' is not a number"):
        axes.axis("Steps", "txt2img").values("4, many")
    with pytest.raises(ValueError, match="never reaches its end"):
        axes.axis("Steps", "txt2img").values("1-5 (-1)")
    with pytest.raises(ValueError, match="unknown axis 'Hair'"):
        axes.axis("Hair", "txt2img")
    with pytest.raises(ValueError, match="for txt2img only"):
        axes.axis("Var. seed", "img2img")
    # A1111's dropdown indices: the shared axes plus the tab's own
    assert [axes.axis(i, "txt2img").label for i in (4, 6, 9, 11, 17, 22, 23)] == [
        "Steps", "CFG Scale", "Sampler", "Checkpoint name", "Schedule type", "Clip skip", "Denoising"]
    assert [axes.axis(i, "img2img").label for i in (5, 9, 10, 21, 22)] == [
        "CFG Scale", "Sampler", "Checkpoint name", "Clip skip", "Denoising"]
    with pytest.raises(ValueError, match="A1111's axis 'Hires steps' \\(index 5\\) is not available"):
        axes.axis(5, "txt2img")


def test_axes_change_only_their_field(xyz):
    _, axes = xyz
    request = Txt2ImgRequest(prompt="a cat <lora:ink:0.8> in <lora:paper:1:0.5>", negative_prompt="a dog")
    lora = axes.axis("LoRA weight", "txt2img")
    assert axes.apply_value(lora, request, 0.3, [0.3]).prompt == "a cat <lora:ink:0.3> in <lora:paper:0.3>"
    sr = axes.axis("Prompt S/R", "txt2img")
    changed = axes.apply_value(sr, request, "bird", ["cat", "bird"])
    assert changed.prompt.startswith("a bird") and changed.negative_prompt == "a dog"
    denoising = axes.axis("Denoising", "txt2img")
    with pytest.raises(ValueError, match="hires fix"):
        axes.apply_value(denoising, request, 0.4, [0.4])
    with_hires = Txt2ImgRequest(hires=HiresFix())
    assert axes.apply_value(denoising, with_hires, 0.4, [0.4]).hires.denoising_strength == 0.4
    assert axes.apply_value(denoising, Img2ImgRequest(), 0.4, [0.4]).denoising_strength == 0.4


def test_a1111_positional_script_args(xyz):
    extension, _ = xyz
    named = extension.from_a1111([4, "1-3", [], 9, "", ["Euler", "DDIM"], 0, "", [], False, True, False, True,
                                  False, False, False, 8, False], "txt2img")
    assert named == {"x_type": "Steps", "x_values": "1-3", "y_type": "Sampler", "y_values": "Euler,DDIM",
                     "z_type": "Nothing", "z_values": "", "draw_legend": False, "include_lone_images": True,
                     "no_fixed_seeds": True, "margin_size": 8}
