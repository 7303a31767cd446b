"""Distilled families read from names and scheduler classes, and the settings suggested for them."""

from __future__ import annotations

import json

import pytest

from pipelines.models.architecture import Architecture, ModelKind
from pipelines.models.families import ModelFamily, family_from_name, folder_family
from pipelines.models.refs import ModelRecord, ModelRef, SourceKind


@pytest.mark.parametrize("name, family", [
    ("sd_xl_turbo_1.0_fp16", ModelFamily.TURBO), ("stabilityai/sd-turbo", ModelFamily.TURBO),
    ("LCM_Dreamshaper_v7", ModelFamily.LCM), ("latent-consistency/lcm-sdxl", ModelFamily.LCM),
    ("dreamshaperXL_lcm", ModelFamily.LCM), ("sdxl_lightning_4step", ModelFamily.LIGHTNING),
    ("Hyper-SD15-8steps", ModelFamily.HYPER),
    ("v1-5-pruned-emaonly", None), ("hyperrealism_v3", None), ("talcmodel", None),
])
def test_family_from_name(name, family):
    assert family_from_name(name) is family


def _record(name: str, family: ModelFamily | None = None, kind: ModelKind | None = None) -> ModelRecord:
    return ModelRecord(ref=ModelRef(SourceKind.FOLDER, f"/m/{name}"), name=name, kind=kind, family=family)


def test_hints_say_steps_cfg_and_sampler():
    assert _record("sdxl-turbo").family_hint.text == "Turbo model: 1–4 steps, CFG scale 0–1, sampler Euler a"
    lcm = _record("distilled", ModelFamily.LCM).family_hint
    assert (lcm.steps, lcm.cfg, lcm.sampler) == ((4, 8), (1.0, 2.0), "LCM")
    assert _record("sdxl_lightning_4step").family_hint.text == "Lightning model: 4 steps, CFG scale 1–2, sampler Euler"
    assert _record("mine", kind=ModelKind(Architecture.SDXL, turbo=True)).family_hint.label == "Turbo"
    assert _record("v1-5-pruned-emaonly", kind=ModelKind(Architecture.SD1)).family_hint is None


def test_a_folder_with_an_lcm_scheduler_is_lcm_whatever_its_name(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"scheduler": ["diffusers", "LCMScheduler"]}))
    assert folder_family(tmp_path, "my-model") is ModelFamily.LCM
    (tmp_path / "model_index.json").write_text(json.dumps({"scheduler": ["diffusers", "PNDMScheduler"]}))
    assert folder_family(tmp_path, "my-model") is None and folder_family(tmp_path, "my-turbo") is ModelFamily.TURBO
