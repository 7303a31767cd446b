"""What the loaded extensions added: hooks per point, sections, scripts, tabs, routes, options, load reports.

One :class:`ExtensionRegistry` lives on the AppContext (no module state). Extensions write to it only
through :class:`~pipelines.extension_api.ExtensionContext` during ``register``; everything else reads it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipelines.errors import ValidationError
from pipelines.extension_api import AppStarted, Field, HookPoint, Option, Route, Script, Section, Tab
from pipelines.hooks.dispatch import HookEntry, JobHooks, app_started

Status = Literal["loaded", "failed", "disabled"]
Contribution = Section | Script | Tab | Route | Option


@dataclass(frozen=True)
class ExtensionLoadReport:
    """How loading one extension folder went (the Extensions tab shows these)."""

    name: str
    folder: Path
    builtin: bool
    status: Status
    error: str | None = None
    load_seconds: float = 0.0


def _args_field(extension: str, prefix: str) -> str:
    return f"{prefix}.{extension}" if prefix else extension


class ExtensionRegistry:
    """Hooks and contributions by extension name, in load order."""

    def __init__(self, option_value: Callable[[str, Any], Any] | None = None) -> None:
        self._hooks: list[HookEntry] = []
        self._items: list[tuple[str, Contribution]] = []
        self._reports: list[ExtensionLoadReport] = []
        self._option_value = option_value or (lambda key, default: default)
        self._lock = threading.Lock()
        self._seen_models: weakref.WeakSet = weakref.WeakSet()  # models whose model_loaded hooks ran

    # ---- ExtensionSink (what ExtensionContext writes to) ---------------------------------------
    def add_hook(self, extension: str, point: HookPoint, fn: Callable[[Any], Any]) -> None:
        if not callable(fn):
            raise TypeError(f"a {point.value} hook must be callable, got {type(fn).__name__}")
        with self._lock:
            self._hooks.append(HookEntry(extension, point, fn))

    def add_contribution(self, extension: str, item: Contribution) -> None:
        if not isinstance(item, Section | Script | Tab | Route | Option):
            raise TypeError(f"cannot add a {type(item).__name__}: use Section, Script, Tab, Route or Option")
        if isinstance(item, Script) and self.script(item.title) is not None:
            raise ValueError(f"a script titled {item.title!r} already exists")
        with self._lock:
            self._items.append((extension, item))

    def option_value(self, key: str, default: Any) -> Any:
        """The setting's current value; unset: ``default``, else the default its :class:`Option` declares."""
        if default is None:
            default = next((o.default for _, o in self.options() if o.key == key), None)
        return self._option_value(key, default)

    def set_option_reader(self, option_value: Callable[[str, Any], Any]) -> None:
        self._option_value = option_value

    # ---- loading ----------------------------------------------------------------------------
    def discard(self, extension: str) -> None:
        """Forget whatever ``extension`` added (its ``register`` failed half way)."""
        with self._lock:
            self._hooks = [h for h in self._hooks if h.extension != extension]
            self._items = [(name, item) for name, item in self._items if name != extension]

    def add_report(self, report: ExtensionLoadReport) -> None:
        with self._lock:
            self._reports.append(report)

    def reports(self) -> list[ExtensionLoadReport]:
        with self._lock:
            return list(self._reports)

    # ---- reading ----------------------------------------------------------------------------
    def hooks(self, point: HookPoint) -> list[HookEntry]:
        with self._lock:
            return [h for h in self._hooks if h.point is point]

    def _of(self, kind: type) -> list[tuple[str, Any]]:
        with self._lock:
            return [(name, item) for name, item in self._items if isinstance(item, kind)]

    def sections(self, mode: str | None = None) -> list[tuple[str, Section]]:
        return [(n, s) for n, s in self._of(Section) if mode is None or mode in s.modes]

    def scripts(self, mode: str | None = None) -> list[tuple[str, Script]]:
        return [(n, s) for n, s in self._of(Script) if mode is None or mode in s.modes]

    def script(self, title: str) -> tuple[str, Script] | None:
        """The script titled ``title`` (case-insensitive, as A1111's script_name), or None."""
        wanted = title.strip().lower()
        return next(((n, s) for n, s in self._of(Script) if s.title.lower() == wanted), None)

    def tabs(self) -> list[tuple[str, Tab]]:
        return self._of(Tab)

    def routes(self) -> list[tuple[str, Route]]:
        return self._of(Route)

    def options(self) -> list[tuple[str, Option]]:
        return self._of(Option)

    # ---- jobs -------------------------------------------------------------------------------
    def section_fields(self, extension: str, mode: str | None = None) -> tuple[Field, ...]:
        return tuple(f for name, s in self.sections(mode) if name == extension for f in s.fields)

    def job_args(self, raw: Mapping[str, Any] | None, *, mode: str | None = None,
                 field_prefix: str = "alwayson_scripts") -> dict[str, dict[str, Any]]:
        """Section values per extension, checked: ``raw`` maps an extension name (or a section title,
        case-insensitive) to its values by field name, or to A1111's ``{"args": [...]}`` (a list in field
        order, or a dict). Missing fields take their defaults; a section whose ``enabled_field`` is off
        is left out (its hooks see ``{}``). Unknown names and bad values raise ValidationError."""
        out: dict[str, dict[str, Any]] = {}
        for key, value in (raw or {}).items():
            extension = self._section_owner(str(key), mode)
            if extension is None:
                known = sorted({n for n, _ in self.sections(mode)})
                raise ValidationError(_args_field(str(key), field_prefix),
                                      f"no extension section named {key!r}; known: {known}")
            out[extension] = self._checked(extension, value, mode, _args_field(str(key), field_prefix))
        for extension in list(out):
            if any(s.enabled_field and not out[extension].get(s.enabled_field)
                   for name, s in self.sections(mode) if name == extension):
                del out[extension]
        return out

    def _section_owner(self, key: str, mode: str | None) -> str | None:
        wanted = key.strip().lower()
        for name, section in self.sections(mode):
            if wanted in (name.lower(), section.title.lower()):
                return name
        return None

    def _checked(self, extension: str, value: Any, mode: str | None, field: str) -> dict[str, Any]:
        fields = self.section_fields(extension, mode)
        if isinstance(value, Mapping) and set(value) == {"args"}:
            value = value["args"]
        if isinstance(value, list | tuple):
            if len(value) > len(fields):
                raise ValidationError(field, f"takes at most {len(fields)} values ({[f.name for f in fields]}), "
                                             f"got {len(value)}")
            value = {f.name: v for f, v in zip(fields, value, strict=False)}
        if not isinstance(value, Mapping):
            raise ValidationError(field, f"must be an object of values by name, got {type(value).__name__}")
        return check_fields(fields, value, field)

    def app_started(self, event: AppStarted) -> list[str]:
        """Run the app_started hooks; failures are logged and returned as messages (the app serves on)."""
        return app_started(self.hooks(HookPoint.APP_STARTED), event)

    def for_job(self, args: Mapping[str, Mapping[str, Any]] | None = None) -> JobHooks:
        """A dispatcher for one job: the hooks as they are now, and each extension's values for this job."""
        with self._lock:
            hooks = list(self._hooks)
        return JobHooks(hooks, {name: dict(values) for name, values in (args or {}).items()}, self._seen_models)


def check_fields(fields: tuple[Field, ...], values: Mapping[str, Any], field: str) -> dict[str, Any]:
    """``values`` by field name, converted, with defaults for the missing ones; unknown names are refused."""
    by_name = {f.name: f for f in fields}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ValidationError(f"{field}.{unknown[0]}", f"unknown field; the fields are {list(by_name)}")
    out: dict[str, Any] = {}
    for f in fields:
        try:
            out[f.name] = f.coerce(values.get(f.name))
        except ValueError as exc:
            raise ValidationError(f"{field}.{f.name}", str(exc)) from exc
    return out
