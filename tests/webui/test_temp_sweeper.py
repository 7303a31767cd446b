"""Cleaning Gradio's temporary folder (issue 12): what one sweep deletes and what it keeps. That the served app
sweeps its own folder on schedule is checked in tests/api/test_security.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

from webui.temp_sweeper import TempSweeper, shared_default_folder, sweep


def _write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_sweep_deletes_old_files_and_keeps_fresh_ones(tmp_path):
    folder = tmp_path / "gradio-tmp"
    outside = _write(tmp_path / "outside" / "kept.txt", b"not Atelier's")
    old = _write(folder / "aa11" / "upload.png")
    shown_again = _write(folder / "bb22" / "result.png")  # old, but handed to a page again since
    link = folder / "cc33" / "link.png"
    link.parent.mkdir()
    link.symlink_to(outside)
    folder_link = folder / "dd44"
    folder_link.symlink_to(outside.parent, target_is_directory=True)
    os.utime(old, (1, 1))  # an ancient modification time (shutil.copy2 keeps the source's) does not count
    time.sleep(0.3)
    os.utime(shown_again)  # what Gradio does when it hands a cached file out again
    fresh = _write(folder / "ee55" / "upload.png")
    fresh_copy = _write(folder / "ff66" / "copy.png")
    os.utime(fresh_copy, (1, 1))
    now = fresh.stat().st_ctime + 0.1

    deleted = sweep(folder, max_age_s=0.25, now=now)

    assert sorted(deleted) == sorted([old, link, folder_link])
    assert shown_again.exists() and fresh.exists() and fresh_copy.exists()
    assert outside.read_bytes() == b"not Atelier's"  # links go, never what they point to
    assert (folder / "aa11").is_dir()  # emptied by this sweep: its folder is as young as that
    sweep(folder, max_age_s=0.25, now=time.time() + 1)  # the next one, once it is as old, takes it
    assert not (folder / "aa11").exists() and not (folder / "cc33").exists()
    assert folder.is_dir()  # the folder itself stays


def test_gradio_s_machine_wide_folder_is_never_swept(tmp_path):
    assert not TempSweeper(shared_default_folder(), max_age_s=86400, every_s=3600).enabled
    assert not TempSweeper(tmp_path, max_age_s=0, every_s=3600).enabled  # 0: off
    assert TempSweeper(tmp_path, max_age_s=86400, every_s=3600).enabled
