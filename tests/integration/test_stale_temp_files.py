"""Temporary files left by writes a killed process never finished are removed when the app context is built (in
the background: start-up does not wait for the walk over every output); nothing else is touched (look-alike names,
a write still in progress, folders Atelier does not write)."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pipelines.context
from pipelines.context import AppContext
from pipelines.files import atomic_file
from tests.support.apps import make_settings

AN_HOUR_AGO = time.time() - 3600


def killed_write(target: Path, *, stale: bool = True) -> tuple[object, Path]:
    """Half of ``target`` written through atomic_file, then abandoned as a killed process leaves it: the
    temporary file stays. Returns the open context (kept alive: collecting it would clean up) and the file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    before = set(target.parent.iterdir())
    writing = atomic_file(target)
    file = writing.__enter__()
    file.write(b"half a file")
    file.flush()
    (temp,) = set(target.parent.iterdir()) - before
    if stale:
        os.utime(temp, (AN_HOUR_AGO, AN_HOUR_AGO))
    return writing, temp


def test_stale_temporaries_are_removed_at_start_and_nothing_else(tmp_path, caplog):
    data, elsewhere = tmp_path / "data", tmp_path / "more-checkpoints"
    targets = [data / "config.json", data / "styles.csv", data / "cache" / "extensions-index.json",
               data / "outputs" / "txt2img-images" / "2026-11-30" / "00001-7.png",
               data / "models" / "Stable-diffusion" / "sub" / "model.safetensors",
               data / "models" / "Lora" / "ink.safetensors", data / "embeddings" / "style.safetensors",
               elsewhere / "other.safetensors"]
    abandoned = [killed_write(target) for target in targets]
    in_progress = killed_write(data / "models" / "VAE" / "vae.safetensors", stale=False)  # another process's
    not_ours = killed_write(data / "my-notes" / "todo.txt")  # below the data folder, but Atelier never writes here
    survivors = [data / ".hidden.tmp", data / "config.json.abcdefgh.tmp", data / ".config.json.ABCDEFGH.tmp",
                 data / ".config.json.abcdefg.tmp", data / "outputs" / ".a.png.abcdefgh.tmp.keep",
                 data / "models" / "Lora" / ".ink.safetensors.tmp", data / "models" / "Lora" / "real.safetensors",
                 in_progress[1], not_ours[1]]
    for path in survivors[:-2]:
        path.write_bytes(b"keep me")
        os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    with caplog.at_level(logging.INFO, logger="pipelines.files"):
        ctx = AppContext.build(make_settings(data, ckpt_dirs=(elsewhere,)))
        ctx.housekeeping.join(60)  # the sweep runs beside start-up
    assert [temp for _, temp in abandoned if temp.exists()] == []
    assert [path for path in survivors if not path.exists()] == []
    assert "removed 8 temporary file(s) left by interrupted writes" in caplog.text


def test_start_up_does_not_wait_for_the_sweep(tmp_path, monkeypatch):
    """The sweep walks every output ever saved: AppContext.build returns while it is still running."""
    abandoned = killed_write(tmp_path / "outputs" / "txt2img-images" / "2026-11-30" / "00001-7.png")
    release = threading.Event()
    sweep = pipelines.context.remove_stale_temp_files

    def slow_sweep(*args, **kwargs) -> int:  # the real sweep, after a walk over a very large outputs tree
        release.wait(60)
        return sweep(*args, **kwargs)

    monkeypatch.setattr(pipelines.context, "remove_stale_temp_files", slow_sweep)
    ctx = AppContext.build(make_settings(tmp_path))  # would wait 60 s here if start-up ran the sweep itself
    assert ctx.housekeeping.is_alive() and abandoned[1].exists()
    release.set()
    ctx.housekeeping.join(60)
    assert not ctx.housekeeping.is_alive() and not abandoned[1].exists()
