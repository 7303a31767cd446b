"""Small WebP copies of history images for the History tab's pages (48 full-size PNGs would be tens of MB).

Made on first view into ``outputs/.thumbnails/`` (inside the outputs folder, which the UI serves; the scan skips
dot-folders), named by the image's id and modification time, so a changed file gets a new one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from pipelines.files import atomic_file
from pipelines.history.records import HistoryEntry

log = logging.getLogger(__name__)
FOLDER = ".thumbnails"
SIZE = 256  # the longer side, in pixels


def thumbnail(outputs_dir: Path, entry: HistoryEntry, source: Path) -> Path:
    """The thumbnail of ``entry`` (whose file is ``source``), made if missing; ``source`` itself if that fails."""
    path = outputs_dir / FOLDER / f"{entry.id}-{int(entry.created * 1000)}.webp"
    if path.is_file():
        return path
    try:
        with Image.open(source) as image:
            image.draft("RGB", (SIZE, SIZE))  # JPEG: decode at a smaller scale
            small = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        small.thumbnail((SIZE, SIZE))
        with atomic_file(path) as fh:
            small.save(fh, format="WEBP", quality=80)
        return path
    except Exception as exc:  # the page shows the image itself rather than nothing
        log.warning("no thumbnail for %s: %s", source, exc)
        return source
