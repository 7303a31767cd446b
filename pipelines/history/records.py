"""What the history holds about one image, what a search asks for and what it answers."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from pipelines.errors import ValidationError

MAX_PAGE_SIZE = 200
FAVOURITE_CHOICES = (None, True, False)


@dataclass(frozen=True)
class HistoryEntry:
    """One image file under the outputs folder, as indexed (``path`` relative to the outputs folder, with ``/``).

    A trashed image's ``path`` is where it lies now (``.trash/...``) and ``original`` where Restore puts it back.
    """

    id: int
    path: str
    mode: str  # txt2img, img2img, extras, ... ("" when neither the folder nor the infotext says)
    kind: str  # "images" or "grids"
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    width: int = 0
    height: int = 0
    sampler: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    model: str = ""
    model_hash: str = ""
    vae: str = ""
    vae_hash: str = ""
    loras: tuple[str, ...] = ()
    created: float = 0.0  # Unix time: when the file was written (its modification time)
    favourite: bool = False
    trashed: bool = False
    original: str = ""  # for a trashed image, its path before it was trashed
    infotext: str = ""


@dataclass(frozen=True)
class HistoryQuery:
    """A search: every given filter must hold. ``text`` is the search box (see :func:`fts_query` for its syntax)."""

    text: str = ""
    model: str = ""  # exact model name, as the infotext's ``Model``
    mode: str = ""
    date_from: _dt.date | None = None  # inclusive, local time
    date_to: _dt.date | None = None  # inclusive, local time
    width: int | None = None
    height: int | None = None
    favourite: bool | None = None  # True: favourites only; False: all but favourites
    trashed: bool = False  # False: the normal history; True: the trash
    page: int = 1  # 1-based
    page_size: int = 48

    def validate(self) -> HistoryQuery:
        if self.page < 1:
            raise ValidationError("page", f"must be 1 or more, got {self.page}")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValidationError("page_size", f"must be between 1 and {MAX_PAGE_SIZE}, got {self.page_size}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValidationError(name, f"must be a positive number of pixels, got {value}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValidationError("date_to", f"{self.date_to} is before date_from {self.date_from}")
        return self


def parse_date(field_name: str, text: str) -> _dt.date | None:
    """A ``YYYY-MM-DD`` date typed into a filter (empty: None)."""
    if not (text or "").strip():
        return None
    try:
        return _dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValidationError(field_name, f"{text.strip()!r} is not a date like 2026-03-14") from exc


def parse_size(field_name: str, text: str) -> tuple[int | None, int | None]:
    """A size filter: ``512x768``, ``512x`` (width only) or ``x768`` (height only); empty: no filter."""
    text = (text or "").strip().lower().replace(" ", "")
    if not text:
        return None, None
    width, sep, height = text.partition("x")
    try:
        if not sep or not (width or height):
            raise ValueError(text)
        return (int(width) if width else None), (int(height) if height else None)
    except ValueError as exc:
        raise ValidationError(field_name, f"{text!r} is not a size like 512x768, 512x or x768") from exc


@dataclass(frozen=True)
class HistoryPage:
    """One page of a search's results, newest first, and how many match in all."""

    entries: list[HistoryEntry]
    total: int
    page: int
    page_size: int
    indexing: bool = False  # a scan is still running: more images may appear

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class ScanReport:
    """What a scan of the outputs folder did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)  # files that could not be read, with why
