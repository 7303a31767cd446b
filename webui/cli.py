"""Command-line adapter: one txt2img request through the same engine, no server.

``launch.py generate "a prompt" --steps 20 --sampler "DPM++ 2M" --seed 1 --out out.png``
parses the arguments (launch.py is the one place that reads argv) and calls
:func:`run_txt2img`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from pipelines.context import AppContext
from pipelines.errors import AtelierError
from pipelines.jobs import JobOwner
from pipelines.modes.unconditional import suggested_settings
from pipelines.outputs import save_image_as
from pipelines.progress import ProgressUpdate
from pipelines.requests import Txt2ImgRequest


def out_paths(out: Path, count: int) -> list[Path]:
    """``out.png`` for one image; ``out-1.png``, ``out-2.png`` ... for several."""
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix or '.png'}") for i in range(1, count + 1)]


def _progress_printer(stream: TextIO):
    def show(update: ProgressUpdate) -> None:
        if update.unit == "bytes":
            stream.write(f"\r{update.text}: {update.step / 2**20:.1f}/{update.total / 2**20:.1f} MiB")
        else:
            stream.write(f"\r{update.text} step {update.step}/{update.total}")
        if update.step >= update.total:
            stream.write("\n")
        stream.flush()

    return show


def model_defaults(ctx: AppContext, model: str | None) -> tuple[str, int]:
    """The sampler and steps a run without ``--sampler`` / ``--steps`` uses: A1111's (Euler a, 20), or an
    unconditional model's own (DDPM over all its training steps)."""
    try:
        record = ctx.store.resolve(model or ctx.selection.current)
    except AtelierError:
        record = None  # the job itself reports it
    return suggested_settings(record) or (Txt2ImgRequest.sampler_name, Txt2ImgRequest.steps)


def family_note(ctx: AppContext, request: Txt2ImgRequest) -> str | None:
    """A note when a Turbo/LCM/... model is run with steps or CFG it is not made for (the UI shows the hint)."""
    try:
        record = ctx.store.resolve(request.model or ctx.selection.current)
    except AtelierError:
        return None  # the job itself reports it
    hint = record.family_hint
    if hint is None or hint.fits(request.steps, request.cfg_scale):
        return None
    return f"note: {record.name} is a {hint.text} (this run: {request.steps} steps, CFG scale {request.cfg_scale:g})"


def run_txt2img(ctx: AppContext, request: Txt2ImgRequest, *, out: Path | None, quiet: bool = False,
                stdout: TextIO | None = None, stderr: TextIO | None = None, print_grid: bool = False) -> int:
    """Generate, save, print the saved paths (with ``print_grid``, the batch's saved grid first); returns the
    process exit status.

    ``stdout``/``stderr`` default to the streams ``sys`` holds at the call (not at import), so
    redirections made after import (pytest's capture, ``contextlib.redirect_stderr``) see the output."""
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        request.validate()
        if (note := family_note(ctx, request)) is not None:
            print(note, file=stderr)
        result = ctx.engine.generate(request, on_progress=(lambda _u: None) if quiet else _progress_printer(stderr),
                                     owner=JobOwner("cli", str(os.getpid())))
    except AtelierError as exc:
        print(f"error: {exc}", file=stderr)
        return 2
    paths = result.paths
    if out is not None:
        paths = [save_image_as(img.image, path, img.infotext)
                 for img, path in zip(result.images, out_paths(out, len(result.images)), strict=True)]
    if print_grid and result.grid is not None and result.grid.path is not None:
        print(result.grid.path, file=stdout)  # launch.py imagine: the grid first
    for path in paths:
        print(path, file=stdout)
    for notice in result.notices:  # e.g. the job was retried with lower memory
        print(notice, file=stderr)
    if result.interrupted:
        print("interrupted", file=stderr)
        return 130
    return 0
