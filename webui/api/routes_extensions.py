"""Extensions over HTTP: A1111's ``GET /sdapi/v1/extensions`` from the real installed folders, and
Atelier's own management routes under ``/atelier/v1/extensions`` (list with load status, install,
check for updates, update, rollback, enable/disable, uninstall).

The management routes call :class:`~pipelines.extension_manager.manager.ExtensionManager`, whose
methods enforce the access gate: under ``--listen`` / ``--share`` (without
``--enable-insecure-extension-access``) they answer 403 with the reason. They sit behind the same
``--api-auth`` login as /sdapi and exist only where the API is served (``--api`` / ``--nowebui``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Body
from fastapi.params import Depends

from pipelines.context import AppContext
from pipelines.extension_manager.errors import ExtensionAccessDenied, ExtensionNotFoundError, RequirementsConflict
from pipelines.extension_manager.records import ExtensionRecord
from pipelines.hooks.registry import ExtensionLoadReport
from webui.api.errors import ApiError, ApiRoute
from webui.api.models import ApiModel, ExtensionItem

ATELIER_PREFIX = "/atelier/v1"
T = TypeVar("T")
ERRORS = {status: {"description": text} for status, text in (
    (403, "refused: the server is reachable beyond this machine (--listen, --share)"),
    (404, "no such extension"), (409, "its requirements would change Atelier's packages"),
    (422, "a bad URL, branch or name"))}


class AtelierExtensionItem(ApiModel):
    """One installed extension with what loading made of it (Atelier's addition)."""

    name: str
    folder: str
    builtin: bool
    enabled: bool
    disabled_reason: str | None = None
    remote: str = ""
    branch: str = ""
    commit_hash: str = ""
    commit_date: int = 0
    can_roll_back: bool = False
    status: str = "not loaded"  # loaded / failed / disabled, as at start-up; "not loaded" until a restart
    error: str | None = None
    load_seconds: float = 0.0


class InstallRequest(ApiModel):
    url: str
    branch: str | None = None
    name: str | None = None  # the folder name; from the URL when empty


class EnableRequest(ApiModel):
    enabled: bool


class UpdateCheckItem(ApiModel):
    name: str
    behind: int
    error: str | None = None


def a1111_item(record: ExtensionRecord) -> ExtensionItem:
    return ExtensionItem(name=record.name, remote=record.remote, branch=record.branch,
                         commit_hash=record.commit_hash, version=record.version, commit_date=record.commit_date,
                         enabled=record.enabled)


def atelier_item(record: ExtensionRecord, report: ExtensionLoadReport | None) -> AtelierExtensionItem:
    return AtelierExtensionItem(
        name=record.name, folder=str(record.folder), builtin=record.builtin, enabled=record.enabled,
        disabled_reason=record.disabled_reason, remote=record.remote, branch=record.branch,
        commit_hash=record.commit_hash, commit_date=record.commit_date, can_roll_back=bool(record.previous_commit),
        status=report.status if report is not None else "not loaded",
        error=report.error if report is not None else None,
        load_seconds=report.load_seconds if report is not None else 0.0)


def refused_as_http(call: Callable[[], T]) -> T:
    """The manager's refusals as HTTP statuses: 403 (gate), 404 (no such extension), 409 (requirements)."""
    try:
        return call()
    except ExtensionAccessDenied as exc:
        raise ApiError(403, str(exc), error="ExtensionAccessDenied") from exc
    except ExtensionNotFoundError as exc:
        raise ApiError(404, str(exc), error="ExtensionNotFound") from exc
    except RequirementsConflict as exc:
        raise ApiError(409, str(exc), error="RequirementsConflict") from exc


def add_extension_routes(router: APIRouter, ctx: AppContext) -> None:
    """A1111's ``/extensions`` on the /sdapi/v1 router."""

    @router.get("/extensions", response_model=list[ExtensionItem])
    def extensions() -> list[ExtensionItem]:
        """Every extension folder (built-in ones too), read from git: A1111's fields."""
        return [a1111_item(record) for record in ctx.extension_manager.records()]


def build_atelier_router(ctx: AppContext, dependencies: list[Depends]) -> APIRouter:
    """``/atelier/v1/extensions...``, behind ``dependencies`` (the API's login)."""
    router = APIRouter(prefix=ATELIER_PREFIX, route_class=ApiRoute, dependencies=dependencies, tags=["atelier"])
    manager = ctx.extension_manager

    def item(record: ExtensionRecord) -> AtelierExtensionItem:
        reports = {report.name: report for report in ctx.extensions.reports()}
        return atelier_item(record, reports.get(record.name))

    @router.get("/extensions", response_model=list[AtelierExtensionItem])
    def list_extensions() -> list[AtelierExtensionItem]:
        """Installed extensions with their git state and what loading them at start-up gave."""
        return [item(record) for record in manager.records()]

    @router.post("/extensions/install", response_model=AtelierExtensionItem, responses=ERRORS)
    def install(request: InstallRequest) -> AtelierExtensionItem:
        """Clone a git repository into the extensions folder; loaded at the next start."""
        return item(refused_as_http(lambda: manager.install(request.url, branch=request.branch, name=request.name)))

    @router.post("/extensions/check-updates", response_model=list[UpdateCheckItem], responses=ERRORS)
    def check_updates(names: list[str] | None = Body(None, embed=True)) -> list[UpdateCheckItem]:
        """Fetch and count the commits each extension (``names``, or all) is behind."""
        return [UpdateCheckItem(name=c.name, behind=c.behind, error=c.error)
                for c in refused_as_http(lambda: manager.check_updates(names))]

    @router.post("/extensions/{name}/update", response_model=AtelierExtensionItem, responses=ERRORS)
    def update(name: str) -> AtelierExtensionItem:
        """Fast-forward to the remote branch (the commit before is kept for rollback)."""
        return item(refused_as_http(lambda: manager.update(name)))

    @router.post("/extensions/{name}/rollback", response_model=AtelierExtensionItem, responses=ERRORS)
    def rollback(name: str) -> AtelierExtensionItem:
        """Return to the commit before the last update."""
        return item(refused_as_http(lambda: manager.rollback(name)))

    @router.post("/extensions/{name}/enable", response_model=AtelierExtensionItem, responses=ERRORS)
    def enable(name: str, request: EnableRequest) -> AtelierExtensionItem:
        """Enable or disable one extension (config.json ``disabled_extensions``; applies at the next start)."""
        refused_as_http(lambda: manager.enable(name, request.enabled))
        return item(manager.record(name))

    @router.delete("/extensions/{name}", response_model=dict[str, Any], responses=ERRORS)
    def uninstall(name: str) -> dict[str, Any]:
        """Remove the extension's folder (built-in ones can only be disabled)."""
        refused_as_http(lambda: manager.uninstall(name))
        return {}

    return router
