"""Extensions through the engine on a tiny model: loading (and isolating broken ones), every hook point,
per-job changes that do not leak, a failing hook that fails only its job, the built-in CFG rescale and
prompt suffix, and the X/Y/Z plot script (grid, infotext, interrupt)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.context import AppContext
from pipelines.errors import ExtensionError, ValidationError
from pipelines.extension_api import AppStarted, HookPoint
from pipelines.requests import Txt2ImgRequest
from tests.support.apps import install_models, make_settings

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "extensions"
JOB = Txt2ImgRequest(prompt="a lighthouse", steps=2, width=64, height=64, seed=5, sampler_name="Euler")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, model_store) -> AppContext:
    data_dir = tmp_path_factory.mktemp("ext-data")
    install_models(model_store, data_dir, ["tiny-sd15"])
    (data_dir / "config.json").write_text(json.dumps({"disabled_extensions": ["switched_off"]}))
    return AppContext.build(make_settings(data_dir, initial_model="tiny-sd15", extensions_dir=FIXTURES))


@pytest.fixture
def events(ctx) -> list:
    recorded = sys.modules["atelier_extensions.recorder"].EVENTS
    recorded.clear()
    return recorded


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image, dtype=np.int16)


def test_load_reports_isolate_broken_extensions(ctx):
    reports = {r.name: r for r in ctx.extensions.reports()}
    assert {n: r.status for n, r in reports.items()} == {
        "cfg_rescale": "loaded", "prompt_suffix": "loaded", "xyz_plot": "loaded", "recorder": "loaded",
        "failing_hook": "loaded", "broken_import": "failed", "broken_register": "failed", "wrong_version": "failed",
        "switched_off": "disabled"}
    assert reports["xyz_plot"].builtin and not reports["recorder"].builtin
    assert "a_module_that_does_not_exist" in reports["broken_import"].error
    assert "register went wrong" in reports["broken_register"].error
    assert "version 99" in reports["wrong_version"].error
    assert all(r.load_seconds >= 0 for r in reports.values())
    # what broken_register added before failing is gone: a job runs without its hook
    assert all(hook.extension != "broken_register" for hook in ctx.extensions.hooks(HookPoint.BEFORE_JOB))
    assert [name for name, _ in ctx.extensions.routes()] == ["recorder"]


def test_every_hook_point_and_no_leak_into_the_next_job(ctx, events):
    args = ctx.extensions.job_args({"Recorder": {"tag": "at dusk"}})
    first = ctx.engine.generate(JOB, extension_args=args)
    kinds = [e[0] for e in events]
    assert kinds == ["before_job", "model_loaded", "step_end", "step_end", "image_saved", "after_job"]
    assert events[0] == ("before_job", "a lighthouse", {"tag": "at dusk", "stop_after": -1, "zero_latents": False})
    assert events[1][1:] == ("tiny-sd15", "sd1")
    assert events[2][1:3] == (0, 2) and events[2][4] == (1, 4, 8, 8) and events[2][3] is not None  # Euler: sigmas
    saved_path, infotext = events[4][1], events[4][3]
    assert saved_path == first.images[0].path and saved_path.is_file()
    assert infotext.startswith("a lighthouse at dusk\n") and "Recorder: at dusk" in infotext
    assert Image.open(saved_path).info["parameters"] == infotext
    # the next job without the section: the prompt and infotext are the plain ones, the model is not "loaded" again
    events.clear()
    second = ctx.engine.generate(JOB)
    assert [e[0] for e in events] == ["before_job", "step_end", "step_end", "image_saved", "after_job"]
    assert second.images[0].infotext.startswith("a lighthouse\n") and "Recorder" not in second.images[0].infotext
    assert events[0][2] == {}
    ctx.extensions.app_started(AppStarted("http://127.0.0.1:1/", ctx.settings.data_dir))
    assert events[-1] == ("app_started", "http://127.0.0.1:1/")


def test_step_hook_changes_latents_and_stops_the_job(ctx, events):
    plain = ctx.engine.generate(JOB)
    zeroed = ctx.engine.generate(JOB, extension_args=ctx.extensions.job_args({"recorder": {"zero_latents": True}}))
    assert np.abs(pixels(plain) - pixels(zeroed)).mean() > 1
    events.clear()
    stopped = ctx.engine.generate(JOB, extension_args=ctx.extensions.job_args({"recorder": {"stop_after": 0}}))
    assert stopped.interrupted and len(stopped.images) == 1
    assert [e[0] for e in events].count("step_end") == 1
    assert np.array_equal(pixels(ctx.engine.generate(JOB)), pixels(plain))  # and the next job is the plain one


@pytest.mark.parametrize("point", ["before_job", "step_end", "after_job"])
def test_a_failing_hook_fails_only_its_job_naming_the_extension(ctx, point):
    args = ctx.extensions.job_args({"failing_hook": {"fail_in": point}})
    with pytest.raises(ExtensionError, match=f"extension 'failing_hook' failed in {point}: RuntimeError"):
        ctx.engine.generate(JOB, extension_args=args)
    assert ctx.engine.state is None and len(ctx.engine.generate(JOB).images) == 1


def test_section_values_are_checked_by_name(ctx):
    with pytest.raises(ValidationError, match="alwayson_scripts.nope"):
        ctx.extensions.job_args({"nope": {}})
    with pytest.raises(ValidationError, match="alwayson_scripts.cfg_rescale.phi"):
        ctx.extensions.job_args({"cfg_rescale": {"phi": 3}})
    with pytest.raises(ValidationError, match="alwayson_scripts.recorder.colour"):
        ctx.extensions.job_args({"recorder": {"colour": "red"}})
    assert ctx.extensions.job_args({"CFG Rescale": {"args": [0.5]}}) == {"cfg_rescale": {"phi": 0.5}}


def test_builtin_cfg_rescale_and_prompt_suffix(ctx):
    plain = ctx.engine.generate(JOB)
    off = ctx.engine.generate(JOB, extension_args=ctx.extensions.job_args({"cfg_rescale": {"phi": 0}}))
    assert np.array_equal(pixels(plain), pixels(off)) and "CFG Rescale" not in off.images[0].infotext
    on = ctx.engine.generate(JOB, extension_args=ctx.extensions.job_args({"cfg_rescale": {"phi": 1.0}}))
    assert np.abs(pixels(plain) - pixels(on)).mean() > 1 and "CFG Rescale \u03c6: 1," in on.images[0].infotext
    suffixed = ctx.engine.generate(JOB, extension_args=ctx.extensions.job_args(
        {"Prompt suffix": {"suffix": "oil painting", "negative_suffix": "blurry"}}))
    assert suffixed.images[0].infotext.startswith("a lighthouse, oil painting\nNegative prompt: blurry\n")


def test_xyz_plot_grid_infotext_and_interrupt(ctx):
    args = {"x_type": "Steps", "x_values": "1-2", "y_type": "CFG Scale", "y_values": "3, 7",
            "include_lone_images": True}
    result = ctx.scripts.run("x/y/z plot", JOB, args)
    grid, cells = result.images[0], result.images[1:]
    assert len(cells) == 4 and [c.seed for c in cells] == [5] * 4
    assert grid.path.parent.parent.name == "txt2img-grids" and grid.image.width > 2 * 64
    saved = Image.open(grid.path).info["parameters"]
    assert saved.startswith(cells[0].infotext + ", Script: X/Y/Z plot, X Type: Steps, X Values: \"1, 2\", "
                            'Y Type: CFG Scale, Y Values: "3, 7"')
    assert "Steps: 1," in cells[0].infotext and "CFG scale: 3," in cells[0].infotext
    assert "Steps: 2," in cells[3].infotext and "CFG scale: 7," in cells[3].infotext
    assert result.info["index_of_first_image"] == 1 and result.info["script_name"] == "X/Y/Z plot"
    # Interrupt during the second cell: the grid keeps what was done
    started = []

    def interrupt_second(update):
        if update.step == 1:
            started.append(update)
            if len(started) == 2:
                ctx.engine.interrupt()

    stopped = ctx.scripts.run("X/Y/Z plot", JOB, args, on_progress=interrupt_second)
    assert stopped.interrupted and 1 <= len(stopped.images) - 1 < 4


def test_script_arguments_are_checked(ctx):
    with pytest.raises(ValidationError, match="script_name"):
        ctx.scripts.run("no such script", JOB)
    with pytest.raises(ValidationError, match="script_args.x_type"):
        ctx.scripts.run("X/Y/Z plot", JOB, [2.5, "1"])
    with pytest.raises(ValidationError, match="Prompt S/R did not find 'castle'"):
        ctx.scripts.run("X/Y/Z plot", JOB, {"x_type": "Prompt S/R", "x_values": "castle, tower"})


def test_xyz_plot_stops_when_interrupt_comes_between_two_cells(ctx):
    ctx.extensions.add_hook("test", HookPoint.AFTER_JOB, lambda event: ctx.engine.interrupt())  # after cell 1
    try:
        result = ctx.scripts.run("X/Y/Z plot", JOB, {"x_type": "Seed", "x_values": "1, 2, 3",
                                                     "include_lone_images": True})
    finally:
        ctx.extensions.discard("test")
    assert result.interrupted and [img.seed for img in result.images[1:]] == [1]


def test_xyz_plot_sampler_checkpoint_and_clip_skip_axes(ctx):
    result = ctx.scripts.run("X/Y/Z plot", JOB, {"x_type": "Sampler", "x_values": "Euler, DDIM",
                                                 "y_type": "Checkpoint name", "y_values": "tiny-sd15",
                                                 "z_type": "Clip skip", "z_values": "1, 2",
                                                 "include_lone_images": True})
    texts = [img.infotext for img in result.images[1:]]
    assert len(texts) == 4 and "Sampler: Euler," in texts[0] and "Sampler: DDIM," in texts[1]
    assert "Clip skip" not in texts[0] and "Clip skip: 2" in texts[3] and all("Model: tiny-sd15" in t for t in texts)
    with pytest.raises(ValidationError, match="unknown checkpoint 'nope'"):
        ctx.scripts.run("X/Y/Z plot", JOB, {"x_type": "Checkpoint name", "x_values": "tiny-sd15, nope"})
