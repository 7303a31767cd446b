"""The image history over HTTP, under Atelier's own prefix (``/atelier/v1/history``), behind the API's login.

Search (newest first, paged, the History tab's filters and search syntax), one image's record and its file,
favourite, delete to the trash and restore, and a rescan of the outputs folder. The routes only translate:
:class:`~pipelines.history.History` does the work. Files are served only from inside the outputs folder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from pipelines.context import AppContext
from pipelines.history import History, HistoryEntry, HistoryNotFoundError, HistoryPage, HistoryQuery
from pipelines.history.records import MAX_PAGE_SIZE
from webui.api.errors import ApiError
from webui.api.models import ApiModel

T = TypeVar("T")
NOT_FOUND = {404: {"description": "no image with that id in the history, or its file is gone"}}
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


class HistoryItem(ApiModel):
    """One image of the history; ``path`` is relative to the outputs folder (a trashed one's is in ``.trash/``)."""

    id: int
    path: str
    file_url: str  # this API's route serving the image file
    mode: str
    kind: str  # images / grids
    prompt: str
    negative_prompt: str
    seed: int | None = None
    width: int
    height: int
    sampler: str
    steps: int | None = None
    cfg_scale: float | None = None
    model: str
    model_hash: str
    vae: str
    vae_hash: str
    loras: list[str]
    created: dt.datetime
    favourite: bool
    trashed: bool
    original: str  # where Restore puts a trashed image back
    infotext: str


class HistorySearchResponse(ApiModel):
    items: list[HistoryItem]
    total: int
    page: int
    page_size: int
    pages: int
    indexing: bool  # a scan is running: more images may appear


class FavouriteRequest(ApiModel):
    favourite: bool = True


class RescanResponse(ApiModel):
    started: bool  # background=true: the scan runs on; the counts are then all zero
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: list[str] = []


def _item(entry: HistoryEntry, prefix: str) -> HistoryItem:
    fields = {name: getattr(entry, name) for name in HistoryItem.model_fields if hasattr(entry, name)}
    return HistoryItem(**{**fields, "loras": list(entry.loras), "file_url": f"{prefix}/history/{entry.id}/file",
                          "created": dt.datetime.fromtimestamp(entry.created, dt.UTC)})


def _found(call: Callable[[], T]) -> T:
    try:
        return call()
    except HistoryNotFoundError as exc:
        raise ApiError(404, str(exc), error="HistoryNotFound") from exc


def add_history_routes(router: APIRouter, ctx: AppContext) -> None:
    """The history routes on Atelier's own router (``/atelier/v1``, the API's login and error shape)."""
    history: History = ctx.history
    prefix = router.prefix

    @router.get("/history", response_model=HistorySearchResponse)
    def search(q: str = Query("", description="search text: words (prefix), \"a phrase\", -excluded, neg:word"),
               model: str = "", mode: str = "", date_from: dt.date | None = None, date_to: dt.date | None = None,
               width: int | None = None, height: int | None = None,
               favourite: bool | None = Query(None, description="true: favourites only; false: all but them"),
               trashed: bool = Query(False, description="true: the trash instead"),
               page: int = 1, page_size: int = Query(48, description=f"1 to {MAX_PAGE_SIZE}")) -> HistorySearchResponse:
        """Search the saved images, newest first (invalid values: 422 naming the parameter)."""
        result: HistoryPage = history.search(HistoryQuery(
            text=q, model=model, mode=mode, date_from=date_from, date_to=date_to, width=width, height=height,
            favourite=favourite, trashed=trashed, page=page, page_size=page_size))
        return HistorySearchResponse(items=[_item(e, prefix) for e in result.entries], total=result.total,
                                     page=result.page, page_size=result.page_size, pages=result.pages,
                                     indexing=result.indexing)

    @router.post("/history/rescan", response_model=RescanResponse)
    def rescan(background: bool = Query(False, description="true: answer at once, scan on in the background")
               ) -> RescanResponse:
        """Index new and changed image files in the outputs folder (also ones from A1111 or Forge) and forget
        the ones that are gone."""
        if background:
            history.rescan_in_background()
            return RescanResponse(started=True)
        report = history.rescan()
        return RescanResponse(started=False, added=report.added, updated=report.updated, removed=report.removed,
                              unchanged=report.unchanged, failed=report.failed)

    @router.get("/history/{entry_id}", response_model=HistoryItem, responses=NOT_FOUND)
    def fetch(entry_id: int) -> HistoryItem:
        """One image's record: its parameters and infotext."""
        return _item(_found(lambda: history.get(entry_id)), prefix)

    @router.get("/history/{entry_id}/file", response_class=FileResponse, responses=NOT_FOUND)
    def image_file(entry_id: int) -> FileResponse:
        """The image file itself, as saved (its infotext in it)."""
        path = _found(lambda: history.file(history.get(entry_id)))
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    @router.post("/history/{entry_id}/favourite", response_model=HistoryItem, responses=NOT_FOUND)
    def favourite(entry_id: int, request: FavouriteRequest) -> HistoryItem:
        """Mark or unmark an image as a favourite."""
        return _item(_found(lambda: history.set_favourite(entry_id, request.favourite)), prefix)

    @router.delete("/history/{entry_id}", response_model=HistoryItem, responses=NOT_FOUND)
    def delete(entry_id: int) -> HistoryItem:
        """Move the image into the trash (``outputs/.trash/``, same path below it); restorable."""
        return _item(_found(lambda: history.trash(entry_id)), prefix)

    @router.post("/history/{entry_id}/restore", response_model=HistoryItem, responses=NOT_FOUND)
    def restore(entry_id: int) -> HistoryItem:
        """Move a trashed image back where it was."""
        return _item(_found(lambda: history.restore(entry_id)), prefix)
