"""The hint line under the checkpoint selector over real HTTP (gradio_client): Turbo and LCM models get
their steps, CFG and sampler; an ordinary model gets none. The CLI notes a run outside the hint."""

from __future__ import annotations

import io
import json
import os
import shutil

import pytest

from pipelines.context import AppContext
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import make_settings, served_ui
from tests.support.ui_client import Client
from webui.cli import run_txt2img


def _lcm_folder(src, dst):
    """tiny-sd15 with an LCMScheduler, as LCM repos ship; weights linked, the two configs rewritten."""
    shutil.copytree(src, dst, copy_function=os.symlink)
    for rel, edit in (("model_index.json", lambda d: {**d, "scheduler": ["diffusers", "LCMScheduler"]}),
                      ("scheduler/scheduler_config.json", lambda d: {**d, "_class_name": "LCMScheduler"})):
        data = json.loads((dst / rel).read_text())
        (dst / rel).unlink()  # a link into the shared model store: replace it, never write through it
        (dst / rel).write_text(json.dumps(edit(data)))


@pytest.fixture(scope="module")
def served(tmp_path_factory, model_store):
    data = tmp_path_factory.mktemp("hint-data")
    ckpts = data / "models" / "Stable-diffusion"
    ckpts.mkdir(parents=True)
    (ckpts / "tiny-sd15").symlink_to(model_store / "tiny-sd15", target_is_directory=True)
    (ckpts / "tiny-sd15-turbo").symlink_to(model_store / "tiny-sd15", target_is_directory=True)
    _lcm_folder(model_store / "tiny-sd15", ckpts / "tiny-distilled")  # nothing in its name says LCM
    ctx = AppContext.build(make_settings(data, initial_model="tiny-sd15"))
    with served_ui(ctx) as url:
        yield ctx, Client(url, verbose=False)


def test_turbo_and_lcm_models_get_their_settings_and_ordinary_ones_none(served):
    ctx, client = served
    assert client.predict(checkpoint="tiny-sd15", api_name="/checkpoint_hint") == ""
    turbo = client.predict(checkpoint="tiny-sd15-turbo", api_name="/checkpoint_hint")
    assert "Turbo model: 1–4 steps, CFG scale 0–1, sampler Euler a" in turbo
    hub = client.predict(checkpoint="stabilityai/sdxl-turbo", api_name="/checkpoint_hint")  # not downloaded
    assert "Turbo model" in hub

    client.predict(checkpoint="tiny-distilled", api_name="/select_checkpoint")
    lcm = client.predict(checkpoint="tiny-distilled", api_name="/checkpoint_hint")
    assert "LCM model: 4–8 steps, CFG scale 1–2, sampler LCM" in lcm
    result = ctx.engine.generate(Txt2ImgRequest(prompt="a teapot", sampler_name="LCM", steps=4, cfg_scale=1.5,
                                                width=64, height=64, model="tiny-distilled"))  # as suggested
    assert result.paths and "Sampler: LCM" in result.images[0].infotext


def test_the_cli_notes_a_turbo_run_outside_its_settings(served):
    ctx, _client = served
    notes = []
    for steps, cfg in ((6, 7.0), (2, 1.0)):
        stderr = io.StringIO()
        request = Txt2ImgRequest(prompt="a teapot", steps=steps, cfg_scale=cfg, width=64, height=64,
                                 model="tiny-sd15-turbo")
        assert run_txt2img(ctx, request, out=None, quiet=True, stdout=io.StringIO(), stderr=stderr) == 0
        notes.append(stderr.getvalue())
    assert notes[0].startswith("note: tiny-sd15-turbo is a Turbo model: 1–4 steps")
    assert "(this run: 6 steps, CFG scale 7)" in notes[0]
    assert notes[1] == ""
