"""Loading the configured extensions at start-up: the built-in folder and --extensions-dir, minus those switched off."""

from __future__ import annotations

from pipelines.extension_host.loader import BUILTIN_DIR, candidates, load_extensions
from pipelines.extension_manager.state import disabled_extensions
from pipelines.hooks.registry import ExtensionLoadReport, ExtensionRegistry
from pipelines.options import OptionSpec, OptionsStore
from pipelines.settings import Settings


def load_configured_extensions(registry: ExtensionRegistry, settings: Settings,
                               options: OptionsStore) -> list[ExtensionLoadReport]:
    """Load the built-in extensions and those in ``--extensions-dir``, except the ones switched off
    (config.json's ``disabled_extensions``, ``--disable-all-extensions``, ``--disable-extra-extensions``);
    the options extensions declare join ``options`` (listed with defaults, typed, checked) and are read there."""
    registry.set_option_reader(lambda key, default: options.values().get(key, default))
    builtin_dir = settings.builtin_extensions_dir or BUILTIN_DIR
    found = candidates(settings.extensions_folder, builtin_dir)
    disabled = disabled_extensions(options, settings, [(folder.name, builtin) for folder, builtin in found])
    reports = load_extensions(registry, settings.extensions_folder, disabled, builtin_dir=builtin_dir)
    options.add_options(OptionSpec(o.key, type(o.default) if isinstance(o.default, bool | int | float) else str,
                                   o.default, o.label, choices=o.choices or None) for _, o in registry.options())
    return reports
