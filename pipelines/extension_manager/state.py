"""Which extensions are switched on: A1111's ``disabled_extensions`` list in ``config.json`` (the
options file, written through :class:`~pipelines.options.OptionsStore` so it stays one atomic file),
its ``disable_all_extensions`` setting (``none`` / ``extra`` / ``all``), and the flags
``--disable-all-extensions`` (every extension, built-in ones too) and ``--disable-extra-extensions``
(only those users installed). A flag wins over the setting; the list is kept either way, so turning
the flag off brings back exactly what was enabled before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipelines.options import CONFIG_FILE, OptionsStore, read_config
from pipelines.settings import Settings

DISABLED_KEY = "disabled_extensions"
DISABLE_ALL_KEY = "disable_all_extensions"
DisableMode = Literal["none", "extra", "all"]
DISABLE_MODES: tuple[DisableMode, ...] = ("none", "extra", "all")

Options = OptionsStore | Mapping[str, Any] | Path  # the store, its values, or a config.json to read


def option_values(options: Options) -> Mapping[str, Any]:
    if isinstance(options, OptionsStore):
        return options.values()
    if isinstance(options, Path):
        return read_config(options / CONFIG_FILE if options.is_dir() else options)
    return options


@dataclass(frozen=True)
class ExtensionSwitches:
    """What is switched off, and why."""

    disabled: frozenset[str]  # disabled one by one (the Extensions tab)
    mode: DisableMode = "none"  # everything ("all") or every user-installed one ("extra") off
    mode_source: str = ""  # the flag or setting that set ``mode``

    def reason(self, name: str, *, builtin: bool) -> str | None:
        """Why the extension is not loaded, or None when it is enabled."""
        if self.mode == "all" or (self.mode == "extra" and not builtin):
            return f"disabled by {self.mode_source}"
        if name in self.disabled:
            return "disabled in the Extensions tab"
        return None

    def is_enabled(self, name: str, *, builtin: bool) -> bool:
        return self.reason(name, builtin=builtin) is None


def extension_switches(options: Options, settings: Settings) -> ExtensionSwitches:
    """The switches from the options (``disabled_extensions``, ``disable_all_extensions``) and the flags."""
    values = option_values(options)
    listed = values.get(DISABLED_KEY) or []
    disabled = frozenset(str(name) for name in listed) if isinstance(listed, list | tuple) else frozenset()
    if settings.disable_all_extensions:
        return ExtensionSwitches(disabled, "all", "--disable-all-extensions")
    if settings.disable_extra_extensions:
        return ExtensionSwitches(disabled, "extra", "--disable-extra-extensions")
    mode = values.get(DISABLE_ALL_KEY, "none")
    if mode in ("extra", "all"):
        return ExtensionSwitches(disabled, mode, f"the {DISABLE_ALL_KEY} setting ({mode!r})")
    return ExtensionSwitches(disabled)


def disabled_extensions(options: Options, settings: Settings, extensions: Iterable[tuple[str, bool]]) -> set[str]:
    """The names among ``extensions`` ((name, builtin) pairs) that must not be loaded."""
    switches = extension_switches(options, settings)
    return {name for name, builtin in extensions if not switches.is_enabled(name, builtin=builtin)}


def save_disabled(store: OptionsStore, disabled: Iterable[str]) -> list[str]:
    """Persist the names disabled one by one (sorted) in config.json; returns what was saved."""
    names = sorted(set(disabled))
    store.update({DISABLED_KEY: names})
    return names
