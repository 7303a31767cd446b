"""A1111's batch grid on a real engine: a batch of 4 is saved as one 2x2 picture in outputs/txt2img-grids/ with
the first image's infotext; the grid_save option (through the options store) turns the file off."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image

from pipelines.imaging.grid import grid_shape
from pipelines.outputs import read_infotext
from pipelines.requests import Txt2ImgRequest
from webui.jobs import generation

JOB = Txt2ImgRequest(prompt="a teapot", steps=1, width=64, height=64, seed=11, sampler_name="Euler",
                     model="tiny-sd15", batch_size=4)


def test_grid_layout_follows_n_rows():
    assert [grid_shape(n) for n in (2, 3, 4, 6, 8, 9)] == [(1, 2), (1, 3), (2, 2), (2, 3), (2, 4), (3, 3)]
    assert grid_shape(4, n_rows=0, batch_size=4) == (4, 1) and grid_shape(5, n_rows=2) == (2, 3)


def test_a_batch_saves_a_grid_unless_grid_save_is_off(app_context):
    result = app_context.engine.generate(JOB)
    grid = result.grid
    assert grid is not None and grid.path is not None
    relative = grid.path.relative_to(app_context.settings.outputs_dir)
    assert relative.parts[0] == "txt2img-grids" and relative.name.endswith("-11.png")
    with Image.open(grid.path) as saved:
        assert saved.size == (128, 128)
        assert read_infotext(saved) == result.images[0].infotext
        assert saved.crop((64, 64, 128, 128)).tobytes() == result.images[3].image.convert("RGB").tobytes()

    app_context.options.update({"grid_save": False, "n_rows": 1})
    off = generation(app_context, replace(JOB, seed=20))(lambda update: None)
    assert off.grid is not None and off.grid.path is None and off.grid.image.size == (256, 64)
    assert len(list(grid.path.parent.iterdir())) == 1 and all(p.is_file() for p in off.paths)
    single = app_context.engine.generate(replace(JOB, batch_size=1))
    assert single.grid is None
