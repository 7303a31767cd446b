"""The hires fix accordion is declared once (txt2img_hires.LAYOUT): every HiresFix field, converted both ways."""

from __future__ import annotations

from dataclasses import fields

import pytest

from pipelines.requests.hires import SAME_SAMPLER, HiresFix
from webui.tabs.txt2img import INPUT_NAMES
from webui.tabs.txt2img_hires import HIRES_INPUT_NAMES, SETTINGS, hires_from_values, hires_values


def test_every_hires_fix_field_has_one_input():
    assert set(SETTINGS) == {f.name for f in fields(HiresFix)}
    assert HIRES_INPUT_NAMES == ("enable_hr", "hr_upscaler", "hr_second_pass_steps", "denoising_strength",
                                 "hr_scale", "hr_resize_x", "hr_resize_y", "hr_sampler_name", "hr_scheduler",
                                 "hr_prompt", "hr_negative_prompt")  # A1111's layout
    assert INPUT_NAMES[-len(HIRES_INPUT_NAMES):] == HIRES_INPUT_NAMES


def test_form_values_round_trip_through_hires_fix():
    hires = HiresFix(hr_scale=1.5, hr_upscaler="Lanczos", hr_second_pass_steps=4, hr_resize_x=96,
                     denoising_strength=0.45, hr_sampler_name="DPM++ 2M", hr_prompt="sharp")
    values = hires_values(hires, enabled=True)
    assert values["enable_hr"] is True and values["hr_scheduler"] == "Use same scheduler"
    values.pop("enable_hr")
    assert hires_from_values(**values) == hires


def test_slider_floats_become_the_field_types_and_empty_choices_the_defaults():
    hires = hires_from_values(hr_second_pass_steps=3.0, hr_resize_x=64.0, hr_scale=2, hr_upscaler="",
                              hr_sampler_name=SAME_SAMPLER, hr_scheduler="", hr_prompt=None)
    assert hires == HiresFix(hr_second_pass_steps=3, hr_resize_x=64)
    assert isinstance(hires.hr_second_pass_steps, int) and isinstance(hires.hr_scale, float)
    assert hires_from_values() == HiresFix()


def test_an_unknown_input_is_refused():
    with pytest.raises(TypeError, match="hr_checkpoint_name"):
        hires_from_values(hr_checkpoint_name="x")
