"""The image history on a real engine: every saved image of a job (and a script's grid) is recorded, an A1111 PNG
dropped into outputs/ is found by a rescan, and a history that cannot write never fails a job."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines.history import HistoryQuery
from pipelines.requests import Txt2ImgRequest

JOB = Txt2ImgRequest(prompt="a lighthouse at dusk", negative_prompt="fog", steps=2, width=64, height=64, seed=5,
                     sampler_name="Euler", model="tiny-sd15")
A1111 = ("a red fox in the snow\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, "
         "CFG scale: 7, Seed: 1234, Size: 96x64, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1")


def test_jobs_and_grids_are_recorded_and_dropped_files_found(app_context):
    history = app_context.history
    history.rescan_in_background().join(timeout=30)  # the start-up rebuild (no database yet) is done
    result = app_context.engine.generate(replace(JOB, batch_size=2))
    page = history.search(HistoryQuery(text="lighthouse"))
    assert page.total == 3 and {e.seed for e in page.entries} == {5, 6}  # the two images and the batch's grid
    assert result.grid is not None and [e.kind for e in page.entries].count("grids") == 1
    entry = next(e for e in page.entries if e.kind == "images")
    assert history.file(entry) in result.paths and entry.infotext in [i.infotext for i in result.images]
    assert (entry.mode, entry.model, entry.negative_prompt, entry.steps, entry.width) == (
        "txt2img", "tiny-sd15", "fog", 2, 64)
    grid = app_context.scripts.run("x/y/z plot", JOB, {"x_type": "Steps", "x_values": "1-2"}).images[0]
    recorded = history.db.get_by_path(grid.path.relative_to(app_context.settings.outputs_dir).as_posix())
    assert recorded is not None and recorded.kind == "grids" and recorded.width == grid.image.width
    assert history.search(HistoryQuery(text="lighthouse")).total == 6  # 2, their grid, 2 cells, the plot

    dropped = app_context.settings.outputs_dir / "from-a1111" / "00042-1234.png"
    dropped.parent.mkdir()
    info = PngInfo()
    info.add_text("parameters", A1111)
    Image.new("RGB", (96, 64)).save(dropped, pnginfo=info)
    assert history.rescan().added == 1
    fox = history.search(HistoryQuery(text="fox", model="v1-5-pruned-emaonly")).entries
    assert [(e.path, e.seed, e.sampler, e.width) for e in fox] == [("from-a1111/00042-1234.png", 1234, "DPM++ 2M", 96)]


def test_a_history_that_cannot_write_never_fails_the_job(app_context, caplog):
    app_context.history.rescan_in_background().join(timeout=30)
    app_context.history.db.close()  # every write now raises
    result = app_context.engine.generate(JOB)
    assert result.paths and result.paths[0].is_file()
    assert "could not record" in caplog.text
