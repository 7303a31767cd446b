"""The image history's core on a temporary outputs folder: indexing files, search syntax and filters, favourites,
trash and restore, rebuilding a missing database, and a database killed (-9) while writing."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines.errors import ValidationError
from pipelines.history import History, HistoryNotFoundError, HistoryQuery
from pipelines.history.search_text import fts_query

A1111 = ("masterpiece, a red fox in the snow, <lora:pixel_art:0.7>\nNegative prompt: blurry, lowres\n"
         "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234, Size: 64x48, "
         'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "pixel_art: 5f3b1a2c4d6e", '
         "Version: v1.10.1")
FORGE = ("a blue teapot on a table\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 99, Size: 32x32, "
         "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: f2.0.1v1.10.1-previous-313")


def write_png(path: Path, infotext: str | None, size=(64, 48), mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    if infotext is not None:
        info.add_text("parameters", infotext)
    Image.new("RGB", size, "gray").save(path, pnginfo=info)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def history(tmp_path) -> History:
    outputs = tmp_path / "outputs"
    day = dt.datetime(2026, 3, 14, 12).timestamp()
    write_png(outputs / "txt2img-images" / "2026-03-14" / "00000-1234.png", A1111, mtime=day)
    write_png(outputs / "txt2img-images" / "2026-03-15" / "00001-99.png", FORGE, size=(32, 32), mtime=day + 86400)
    write_png(outputs / "dropped.png", None, size=(16, 16), mtime=day + 2 * 86400)  # no parameters at all
    history = History.open(outputs, tmp_path)  # no database yet: rebuilt in the background
    history.rescan_in_background().join(timeout=30)
    return history


def paths(history: History, **query) -> list[str]:
    return [entry.path for entry in history.search(HistoryQuery(**query)).entries]


def test_files_on_disk_are_indexed_from_their_infotext(history):
    fox = history.search(HistoryQuery(text="fox")).entries[0]
    assert fox.path == "txt2img-images/2026-03-14/00000-1234.png" and fox.mode == "txt2img"
    assert (fox.seed, fox.steps, fox.cfg_scale, fox.sampler) == (1234, 28, 6.5, "DPM++ 2M")
    assert (fox.model, fox.model_hash, fox.loras) == ("v1-5-pruned-emaonly", "6ce0161689", ("pixel_art",))
    assert (fox.width, fox.height, fox.negative_prompt) == (64, 48, "blurry, lowres")
    assert paths(history) == ["dropped.png", "txt2img-images/2026-03-15/00001-99.png", fox.path]  # newest first
    assert history.models() == ["sd_xl_base_1.0", "v1-5-pruned-emaonly"]


@pytest.mark.parametrize(("text", "expected"), [
    ("fox", ["00000-1234.png"]), ("fo", ["00000-1234.png"]), ('"red fox"', ["00000-1234.png"]),
    ('"fox red"', []), ("teapot table", ["00001-99.png"]), ("-fox", ["dropped.png", "00001-99.png"]),
    ("neg:blurry", ["00000-1234.png"]), ("pixel_art", ["00000-1234.png"]), ("((fox:1.2))", ["00000-1234.png"]),
    ('"unclosed', []), ("lowres", []), ("-neg:lowres teapot", ["00001-99.png"]), ("AND OR NOT *", []),
])
def test_search_syntax(history, text, expected):
    assert [p.rsplit("/", 1)[-1] for p in paths(history, text=text)] == expected


def test_filters_and_paging(history):
    assert paths(history, model="sd_xl_base_1.0") == ["txt2img-images/2026-03-15/00001-99.png"]
    assert len(paths(history, date_from=dt.date(2026, 3, 15), date_to=dt.date(2026, 3, 15))) == 1
    assert len(paths(history, width=64, height=48)) == 1 and paths(history, mode="img2img") == []
    page = history.search(HistoryQuery(page=2, page_size=2))
    assert (page.total, page.pages, len(page.entries)) == (3, 2, 1)
    with pytest.raises(ValidationError, match="page_size"):
        history.search(HistoryQuery(page_size=0))
    with pytest.raises(ValidationError, match="date_to"):
        history.search(HistoryQuery(date_from=dt.date(2026, 3, 2), date_to=dt.date(2026, 3, 1)))


def test_favourite_trash_and_restore(history):
    fox = history.search(HistoryQuery(text="fox")).entries[0]
    assert history.set_favourite(fox.id, True).favourite and paths(history, favourite=True) == [fox.path]
    trashed = history.trash(fox.id)
    assert trashed.trashed and trashed.path == ".trash/" + fox.path and trashed.original == fox.path
    assert not (history.outputs_dir / fox.path).exists() and history.file(trashed).is_file()
    assert fox.path not in paths(history) and paths(history, trashed=True) == [trashed.path]
    write_png(history.outputs_dir / fox.path, FORGE)  # a new image took the name meanwhile
    restored = history.restore(fox.id)
    assert restored.path == fox.path.replace(".png", " (2).png") and restored.favourite and not restored.trashed
    assert history.rescan().removed == 0 and history.rescan().added == 0  # the moves are what the scan sees
    with pytest.raises(HistoryNotFoundError):
        history.get(10_000)


def test_scan_is_incremental_and_forgets_deleted_files(history, tmp_path):
    first = history.search(HistoryQuery(text="teapot")).entries[0]
    history.set_favourite(first.id, True)
    (history.outputs_dir / "dropped.png").unlink()
    write_png(history.outputs_dir / first.path, FORGE.replace("teapot", "kettle"), size=(32, 32))
    report = history.rescan()
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 1, 1)
    again = history.get(first.id)
    assert "kettle" in again.prompt and again.favourite  # updated in place: the favourite flag stays
    history.close()
    (tmp_path / "history.sqlite3").unlink()
    for name in ("history.sqlite3-wal", "history.sqlite3-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    rebuilt = History.open(history.outputs_dir, tmp_path)
    rebuilt.rescan_in_background().join(timeout=30)
    assert rebuilt.db.count() == 2 and rebuilt.db.integrity_ok()


def test_fts_query_quotes_every_term():
    match = fts_query('cat -"dog house" neg:blur it"s')
    assert match.include == '{prompt loras} : "cat"* AND {negative} : "blur"* AND {prompt loras} : "it""s"*'
    assert match.exclude == '{prompt loras} : "dog house"'


_WRITER = """
import sys, time
from pathlib import Path
from pipelines.history.database import HistoryDatabase
from pipelines.history.records import HistoryEntry
db = HistoryDatabase(Path(sys.argv[1]))
n = 0
while True:
    rows = [(HistoryEntry(0, f"txt2img-images/{n}-{i}.png", "txt2img", "images", prompt=f"a cat number {n} {i}",
                          width=64, height=64, created=time.time()), 1, 2) for i in range(50)]
    db.upsert(rows)
    n += 1
    if n == 1:
        print("ready", flush=True)
"""


def test_database_survives_kill_during_writes(tmp_path):
    database = tmp_path / "history.sqlite3"
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(database)], stdout=subprocess.PIPE,
                             cwd=Path(__file__).resolve().parents[2], text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # many transactions in flight
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = db.execute("SELECT count(*) FROM images").fetchone()[0]
        assert count >= 50 and count % 50 == 0  # whole transactions only
        assert db.execute("SELECT count(*) FROM images_fts WHERE images_fts MATCH 'cat'").fetchone()[0] == count


def test_thumbnails_are_small_webp_files_made_once(history):
    big = write_png(history.outputs_dir / "txt2img-images" / "2026-03-16" / "00002-5.png", FORGE, size=(600, 300))
    history.rescan()
    entry = history.db.get_by_path(big.relative_to(history.outputs_dir).as_posix())
    thumb = history.thumbnail(entry)
    with Image.open(thumb) as image:
        assert (image.format, image.size) == ("WEBP", (256, 128))
    assert thumb.parent.name == ".thumbnails" and history.thumbnail(entry) == thumb
    assert history.rescan().added == 0  # the thumbnails folder is not indexed


def test_a_first_scan_cut_short_runs_again_at_the_next_start(tmp_path):
    outputs = tmp_path / "outputs"
    write_png(outputs / "txt2img-images" / "2026-03-14" / "00000-1.png", FORGE)
    first = History(outputs, tmp_path / "history.sqlite3")  # opened, but no scan ran (a CLI run that exited)
    assert first.db.count() == 0 and first.db.get_state("scanned") is None
    first.close()
    again = History.open(outputs, tmp_path)
    again.rescan_in_background().join(timeout=30)
    assert again.db.count() == 1 and again.db.get_state("scanned")
    assert History.open(outputs, tmp_path)._scanner is None  # scanned once: no scan at start any more


def test_an_a1111_jpeg_is_indexed_from_its_exif_comment(tmp_path):
    from pipelines.infotext.png_info import EXIF_IFD, USER_COMMENT

    outputs = tmp_path / "outputs"
    (outputs / "img2img-images").mkdir(parents=True)
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"UNICODE\0" + FORGE.encode("utf-16-be")  # as A1111 writes JPEGs
    Image.new("RGB", (40, 24), "gray").save(outputs / "img2img-images" / "00007-99.jpg", exif=exif)
    history = History(outputs, tmp_path / "history.sqlite3")
    assert history.rescan().added == 1
    entry = history.search(HistoryQuery(text="teapot")).entries[0]
    assert (entry.mode, entry.model, entry.seed, entry.width, entry.height) == ("img2img", "sd_xl_base_1.0", 99, 40, 24)


def test_a_version_1_database_is_migrated(tmp_path):
    from pipelines.history import database

    with sqlite3.connect(tmp_path / "history.sqlite3") as old:
        database._migrate_to_1(old, True)
        old.execute("PRAGMA user_version = 1")
    history = History.open(tmp_path / "outputs", tmp_path)  # no state table yet: migrated, then scanned
    history.rescan_in_background().join(timeout=30)
    assert history.db.get_state("scanned") and history.db.integrity_ok()
    assert history.db._db.execute("PRAGMA user_version").fetchone()[0] == database.SCHEMA_VERSION
