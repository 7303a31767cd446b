"""The extension registry without a model: section values checked by name, an enabled switch, scripts' titles
unique, a failed extension's contributions dropped, hooks returning the wrong thing named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipelines.errors import ExtensionError, ValidationError
from pipelines.extension_api import ExtensionContext, Field, HookPoint, Script, Section, StepChange
from pipelines.hooks import ExtensionRegistry
from pipelines.requests import Txt2ImgRequest


@pytest.fixture
def registry() -> ExtensionRegistry:
    registry = ExtensionRegistry()
    ctx = ExtensionContext("glow", Path("."), registry)
    ctx.add_section(Section("Glow", (Field("on", "Enable", "checkbox", False), Field("amount", "Amount", "slider",
                                                                                     0.5, 0.0, 1.0)),
                            modes=("txt2img",), enabled_field="on"))
    ctx.add_script(Script("Loop", lambda run: None, (Field("times", "Times", "number", 2, 1, 10),)))
    return registry


def test_section_values_by_name_by_position_and_the_enabled_switch(registry):
    assert registry.job_args({"glow": {"amount": 0.2}}) == {}  # "on" is off: the hooks see nothing
    assert registry.job_args({"Glow": {"args": [True, 0.2]}}) == {"glow": {"on": True, "amount": 0.2}}
    assert registry.job_args({"glow": {"on": True}}) == {"glow": {"on": True, "amount": 0.5}}  # defaults fill in
    with pytest.raises(ValidationError, match="alwayson_scripts.glow: takes at most 2 values"):
        registry.job_args({"glow": {"args": [True, 0.2, 3]}})
    with pytest.raises(ValidationError, match="alwayson_scripts.glow.on: on must be true or false"):
        registry.job_args({"glow": {"on": "yes"}})
    with pytest.raises(ValidationError, match="no extension section named 'glow'"):
        registry.job_args({"glow": {}}, mode="img2img")  # the section is txt2img's only


def test_script_titles_are_unique_and_a_failed_extension_is_dropped(registry):
    other = ExtensionContext("copycat", Path("."), registry)
    with pytest.raises(ValueError, match="a script titled 'loop' already exists"):
        other.add_script(Script("loop", lambda run: None))
    other.on(HookPoint.AFTER_JOB, print)
    registry.discard("copycat")
    assert registry.hooks(HookPoint.AFTER_JOB) == [] and registry.script("LOOP")[0] == "glow"


def test_hooks_returning_the_wrong_thing_fail_naming_the_extension(registry):
    ctx = ExtensionContext("sloppy", Path("."), registry)
    ctx.on(HookPoint.BEFORE_JOB, lambda event: "a new prompt")
    with pytest.raises(ExtensionError, match="'sloppy' failed in before_job: TypeError: returned a str"):
        registry.for_job().before_job(Txt2ImgRequest())
    registry.discard("sloppy")
    ctx.on(HookPoint.STEP_END, lambda event: StepChange(latents=torch.zeros(1, 4, 2, 2)))

    class Pipe:
        scheduler = object()
        num_timesteps = 2

    with pytest.raises(ExtensionError, match=r"returned latents of shape torch.Size\(\[1, 4, 2, 2\]\)"):
        registry.for_job().step(Pipe(), 0, None, torch.zeros(1, 4, 8, 8))
