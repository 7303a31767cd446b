"""X/Y/Z plot: one job per combination of up to three axes' values, and a labelled grid of the results.

As in A1111: a seed of -1 is fixed once for the whole grid (unless "Keep -1 for seeds"), so only the axes
change between cells; the grid is saved in ``outputs/<mode>-grids/`` with the first cell's infotext plus
the axes; Interrupt stops after the running cell and the grid shows what was done.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pipelines.extension_api import (
    API_VERSION,
    ExtensionContext,
    Field,
    GeneratedImage,
    GenerationResult,
    Script,
    ScriptRun,
)

from .axes import AXIS_LABELS, a1111_axis_label, apply_value, axis
from .grid import draw_grid

api_version = API_VERSION
TITLE = "X/Y/Z plot"
MAX_CELLS = 400

FIELDS = (
    Field("x_type", "X type", "dropdown", "Nothing", choices=AXIS_LABELS),
    Field("x_values", "X values", "text", ""),
    Field("y_type", "Y type", "dropdown", "Nothing", choices=AXIS_LABELS),
    Field("y_values", "Y values", "text", ""),
    Field("z_type", "Z type", "dropdown", "Nothing", choices=AXIS_LABELS),
    Field("z_values", "Z values", "text", ""),
    Field("draw_legend", "Draw legend", "checkbox", True),
    Field("include_lone_images", "Include Sub Images", "checkbox", False),
    Field("no_fixed_seeds", "Keep -1 for seeds", "checkbox", False),
    Field("margin_size", "Grid margins (px)", "slider", 0, minimum=0, maximum=500, step=2),
)


def from_a1111(args: Sequence[Any], mode: str) -> dict[str, Any]:
    """A1111's positional ``script_args``: x_type, x_values, x_values_dropdown, y_type, y_values,
    y_values_dropdown, z_type, z_values, z_values_dropdown, draw_legend, include_lone_images,
    include_sub_grids, no_fixed_seeds, vary_seeds_x, vary_seeds_y, vary_seeds_z, margin_size, csv_mode.
    An axis type is a label, or an index into A1111 1.10's axis dropdown of the ``mode`` tab (an A1111 axis
    Atelier does not have is refused by name); a non-empty dropdown list is used as the values. The
    sub-grid, vary-seed and csv switches are ignored."""
    values = list(args) + [None] * (18 - len(args))
    named: dict[str, Any] = {}
    for offset, name in ((0, "x"), (3, "y"), (6, "z")):
        type_, text, dropdown = values[offset:offset + 3]
        if type_ is not None:
            named[f"{name}_type"] = a1111_axis_label(type_, mode) if isinstance(type_, int) else type_
        if dropdown:
            text = ",".join(f'"{v}"' if "," in str(v) else str(v) for v in dropdown)
        if text is not None:
            named[f"{name}_values"] = str(text)
    for index, name in ((9, "draw_legend"), (10, "include_lone_images"), (12, "no_fixed_seeds"),
                        (16, "margin_size")):
        if values[index] is not None:
            named[name] = values[index]
    return named


def _axes(run: ScriptRun, mode: str) -> list[tuple[Any, list[Any], str]]:
    """[(axis, values, type label)] for X, Y, Z, each checked."""
    out = []
    for name in ("x", "y", "z"):
        ax = axis(run.args[f"{name}_type"], mode)
        values = ax.values(run.args[f"{name}_values"])
        if ax.label == "Prompt S/R" and values[0] not in run.request.prompt + run.request.negative_prompt:
            raise ValueError(f"Prompt S/R did not find {values[0]!r} in the prompt or negative prompt")
        if ax.label == "Checkpoint name":
            known = run.checkpoints()
            missing = [v for v in values if v not in known]
            if missing:
                raise ValueError(f"unknown checkpoint {missing[0]!r}; installed: {known}")
        out.append((ax, values, ax.label))
    return out


def _label(ax: Any, value: Any) -> str:
    if ax.apply is None:
        return ""
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return shown if ax.label == "Prompt S/R" else f"{ax.label}: {shown}"


def grid_infotext(first: str, axes: list[tuple[Any, list[Any], str]]) -> str:
    """The first cell's infotext with the plot's keys added (A1111's "Script: X/Y/Z plot, X Type: ...")."""
    keys = [f"Script: {TITLE}"]
    for name, (ax, values, label) in zip("XYZ", axes, strict=True):
        if ax.apply is not None:
            shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
            keys += [f"{name} Type: {label}", f'{name} Values: "{shown}"']
    return f"{first}, {', '.join(keys)}" if first else ", ".join(keys)


def run_plot(run: ScriptRun) -> GenerationResult:
    request = run.request
    try:
        axes = _axes(run, request.mode)
    except ValueError as exc:
        raise ValueError(f"{TITLE}: {exc}") from exc
    (xa, xs, _), (ya, ys, _), (za, zs, _) = axes
    if len(xs) * len(ys) * len(zs) > MAX_CELLS:
        raise ValueError(f"{TITLE}: {len(xs) * len(ys) * len(zs)} cells; the limit is {MAX_CELLS}")
    if request.seed == -1 and not run.args["no_fixed_seeds"]:
        request = replace(request, seed=random.randint(0, 2**32 - 1))  # one seed for every cell
    cells: dict[tuple[int, int, int], Any] = {}
    images: list[GeneratedImage] = []
    first_info: dict[str, Any] = {}
    for z, zv in enumerate(zs):
        for y, yv in enumerate(ys):
            for x, xv in enumerate(xs):
                if run.interrupted():
                    break
                job = apply_value(za, apply_value(ya, apply_value(xa, request, xv, xs), yv, ys), zv, zs)
                result = run.generate(job)
                if result.images:
                    cells[(x, y, z)] = result.images[0].image
                    images += result.images
                    first_info = first_info or dict(result.info)
    if not images:
        return GenerationResult(images=[], info=first_info, interrupted=True)
    grid = draw_grid(cells, [_label(xa, v) for v in xs], [_label(ya, v) for v in ys], [_label(za, v) for v in zs],
                     legend=run.args["draw_legend"], margin=int(run.args["margin_size"]))
    saved = replace(run.save_grid(grid, grid_infotext(images[0].infotext, axes)), seed=images[0].seed)
    shown = [saved, *images] if run.args["include_lone_images"] else [saved]
    info = {**first_info, "infotexts": [img.infotext for img in shown], "index_of_first_image": 1,
            "all_seeds": [img.seed for img in shown]}
    return GenerationResult(images=shown, info=info, interrupted=run.interrupted())


def register(ctx: ExtensionContext) -> None:
    ctx.add_script(Script(TITLE, run_plot, FIELDS, positional=from_a1111))
