"""Finding, importing and registering extensions; a broken one is reported with its error and skipped.

An extension is a folder holding ``extension.py``, which declares ``api_version`` and defines
``register(ctx)``. Built-in extensions ship in the repository's ``extensions/`` folder and are named in
:data:`BUILTIN_EXTENSIONS` (a name list in the code, not a flag a cloned folder could claim); user
extensions are the other folders of ``--extensions-dir`` (by default the same folder: the manager clones
into it). A user folder cannot take a built-in's name. Each extension is imported as a package of its
own under a unique module name (``atelier_extensions.<name>``), so two extensions' modules never collide
and an extension may import its own submodules relatively.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import re
import sys
import time
import traceback
from collections.abc import Collection
from pathlib import Path

from pipelines.extension_api import SUPPORTED_API_VERSIONS, ExtensionContext
from pipelines.hooks.registry import ExtensionLoadReport, ExtensionRegistry

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "extensions"
BUILTIN_EXTENSIONS = ("xyz_plot", "cfg_rescale", "prompt_suffix")
ENTRY_FILE = "extension.py"
MODULE_PREFIX = "atelier_extensions"


def discover(folder: Path) -> list[Path]:
    """Extension folders directly under ``folder`` (those with an ``extension.py``), by name."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
                   and (p / ENTRY_FILE).is_file()), key=lambda p: p.name.lower())


def candidates(extensions_dir: Path, builtin_dir: Path = BUILTIN_DIR) -> list[tuple[Path, bool]]:
    """(folder, builtin) for every extension to consider: the built-ins first, then the user's."""
    builtins = [(p, True) for p in discover(builtin_dir) if p.name in BUILTIN_EXTENSIONS]
    same_dir = extensions_dir.resolve() == builtin_dir.resolve()
    users = [(p, False) for p in discover(extensions_dir) if not (same_dir and p.name in BUILTIN_EXTENSIONS)]
    return builtins + users


def module_name(extension: str) -> str:
    return f"{MODULE_PREFIX}.{re.sub(r'[^0-9A-Za-z_]', '_', extension)}"


def _import(name: str, folder: Path):
    """Import ``folder/extension.py`` as a package named ``module_name(name)``; removed again on failure."""
    qualified = module_name(name)
    if MODULE_PREFIX not in sys.modules:  # the namespace every extension package lives under
        namespace = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(MODULE_PREFIX, None,
                                                                                   is_package=True))
        namespace.__path__ = []
        sys.modules[MODULE_PREFIX] = namespace
    spec = importlib.util.spec_from_file_location(qualified, folder / ENTRY_FILE,
                                                  submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {folder / ENTRY_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for key in [k for k in sys.modules if k == qualified or k.startswith(qualified + ".")]:
            del sys.modules[key]
        raise
    return module


def _short_error(exc: BaseException) -> str:
    """The exception and the last frame inside the extension, for the Extensions tab."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if MODULE_PREFIX not in f.filename]
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def load_one(registry: ExtensionRegistry, folder: Path, *, builtin: bool) -> ExtensionLoadReport:
    """Import and register one extension; on any failure its contributions are dropped and the error kept."""
    name = folder.name
    started = time.perf_counter()
    try:
        module = _import(name, folder)
        version = getattr(module, "api_version", None)
        if version is None:
            raise ImportError("extension.py declares no api_version (add: api_version = 1)")
        if version not in SUPPORTED_API_VERSIONS:
            raise ImportError(f"written for extension API version {version!r}; this Atelier supports "
                              f"{', '.join(map(str, SUPPORTED_API_VERSIONS))}")
        register = getattr(module, "register", None)
        if not callable(register):
            raise ImportError("extension.py defines no register(ctx) function")
        register(ExtensionContext(name, folder, registry))
    except Exception as exc:
        registry.discard(name)
        error = _short_error(exc)
        log.error("extension %s not loaded: %s", name, error)
        return ExtensionLoadReport(name, folder, builtin, "failed", error, time.perf_counter() - started)
    seconds = time.perf_counter() - started
    log.info("extension %s loaded in %.3fs", name, seconds)
    return ExtensionLoadReport(name, folder, builtin, "loaded", None, seconds)


def load_extensions(registry: ExtensionRegistry, extensions_dir: Path, disabled: Collection[str] = (), *,
                    builtin_dir: Path = BUILTIN_DIR) -> list[ExtensionLoadReport]:
    """Load every extension found, skipping the ``disabled`` names; each outcome is reported on the registry."""
    reports = []
    seen: set[str] = set()
    for folder, builtin in candidates(extensions_dir, builtin_dir):
        if folder.name in seen:  # a user folder named like a built-in
            report = ExtensionLoadReport(folder.name, folder, False, "failed",
                                         "a built-in extension has this name; rename the folder")
        elif folder.name in disabled:
            report = ExtensionLoadReport(folder.name, folder, builtin, "disabled")
        else:
            report = load_one(registry, folder, builtin=builtin)
        seen.add(folder.name)
        registry.add_report(report)
        reports.append(report)
    return reports
