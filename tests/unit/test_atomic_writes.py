"""Atelier's files survive SIGKILL at any moment, and a failed write leaves the old file and no temporary."""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from pipelines.errors import DiskFullError
from pipelines.files import atomic_file, write_text_atomically

ROOT = Path(__file__).resolve().parents[2]

# Rewrites config.json (as write_config does), styles.csv (write_styles_csv) and an image (save_image_as) in a
# loop, each round a different size; prints "ready" once all three exist.
WRITER = """
import json, sys
from pathlib import Path
from PIL import Image
from pipelines.files import write_text_atomically
from pipelines.outputs import save_image_as
from pipelines.prompts.styles import PromptStyle, write_styles_csv
folder = Path(sys.argv[1])
for round_ in range(10**9):
    n = 2000 + (round_ % 7) * 500
    write_text_atomically(folder / "config.json", json.dumps({f"key{i}": "v" * 40 for i in range(n)}, indent=4))
    write_styles_csv(folder / "styles.csv", [PromptStyle(f"style {i}", "a, " * 20, "b") for i in range(n)])
    save_image_as(Image.effect_noise((128 + round_ % 5 * 16, 128), 64).convert("RGB"), folder / "image.png", "x")
    if round_ == 0:
        print("ready", flush=True)
"""


def _files_read(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert len(config) >= 2000 and all(value == "v" * 40 for value in config.values())
    with open(folder / "styles.csv", encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) >= 2000 and rows[-1]["negative_prompt"] == "b"
    with Image.open(folder / "image.png") as image:
        image.load()
        assert image.info["parameters"] == "x"


def test_files_written_in_a_loop_always_read_after_sigkill(tmp_path):
    rng = random.Random(12)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0
    deadline = time.monotonic() + 5.0  # ~3 s for 20 kills; a loaded machine gets fewer, still enough
    while kills < 20 and time.monotonic() < deadline:
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, text=True)
        if kills == 0:
            assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.25))  # after a restart: sometimes mid-import, mostly mid-write
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        kills += 1
        _files_read(tmp_path)
    assert kills >= 8


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "config.json"
    write_text_atomically(target, '{"old": 1}')

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic_file(target) as file:
        file.write(b'{"new": ')
        raise Boom
    assert target.read_text() == '{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_disk_full_becomes_a_clear_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "image.png"
    with pytest.raises(DiskFullError, match=r"disk full while saving .*image\.png"), atomic_file(target) as file:
        file.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []


def test_no_overwrite_refuses_an_existing_file(tmp_path):
    target = tmp_path / "00000.png"
    target.write_bytes(b"first")
    with pytest.raises(FileExistsError), atomic_file(target, overwrite=False) as file:
        file.write(b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["00000.png"]
