"""The one explicitly constructed application context, passed down from launch.py."""

from __future__ import annotations

import dataclasses
import functools
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pipelines.engine import Engine
from pipelines.extension_host.scripts import ScriptRunner
from pipelines.extension_host.startup import load_configured_extensions
from pipelines.extension_manager.manager import ExtensionManager
from pipelines.files import remove_stale_temp_files
from pipelines.history import History
from pipelines.hooks import ExtensionRegistry
from pipelines.models.store import ModelStore
from pipelines.networks.vae import check_vae_name
from pipelines.options import OptionsStore
from pipelines.prompts.styles import StyleStore
from pipelines.selection import CheckpointSelection
from pipelines.settings import Settings
from pipelines.upscalers.registry import UpscalerRegistry


@dataclass
class AppContext:
    settings: Settings
    store: ModelStore  # every model: records, downloads, memory
    selection: CheckpointSelection  # the checkpoint the UI and the API run on
    upscalers: UpscalerRegistry  # the upscaler list (built-ins, model files, SD x4) over the store
    engine: Engine
    options: OptionsStore  # A1111's options (config.json), shared by the UI and the API
    styles: StyleStore  # A1111's styles.csv
    history: History  # every saved image, searchable (the History tab and /atelier/v1/history)
    extensions: ExtensionRegistry = dataclasses.field(init=False)  # what extensions added; their load reports
    scripts: ScriptRunner = dataclasses.field(init=False)  # runs the extensions' scripts (X/Y/Z plot, ...)
    # start-up chores that need not delay the first request (the stale temporary files' sweep); join to wait
    housekeeping: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.extensions = self.engine.hooks  # the engine calls the hook points of this registry
        self.scripts = ScriptRunner(self.engine, self.extensions)
        load_configured_extensions(self.extensions, self.settings, self.options)

    @functools.cached_property
    def extension_manager(self) -> ExtensionManager:
        """Installs, updates and switches extensions (the Extensions tab and /atelier/v1/extensions)."""
        return ExtensionManager(self.settings, self.options)

    @classmethod
    def build(cls, settings: Settings, *, store: ModelStore | None = None) -> AppContext:
        for folder in settings.data_folders():
            folder.mkdir(parents=True, exist_ok=True)
        housekeeping = threading.Thread(target=sweep_stale_temp_files, args=(settings,), daemon=True,
                                        name="stale temporary files")  # walks all outputs: not on the start-up path
        housekeeping.start()
        store = store or ModelStore(settings)
        selection = CheckpointSelection(store, settings.initial_model)
        upscalers = UpscalerRegistry(settings, store)
        styles = StyleStore(settings.styles_file)
        history = History.open(settings.outputs_dir, settings.data_dir)
        engine = Engine(settings, store, selection, upscalers, styles, history=history)
        return cls(settings=settings, store=store, selection=selection, upscalers=upscalers, engine=engine,
                   options=OptionsStore(settings, selection, vae_check=partial(check_vae_name, store)), styles=styles,
                   history=history, housekeeping=housekeeping)


def sweep_stale_temp_files(settings: Settings) -> int:
    """Remove the temporary files interrupted writes left in the folders Atelier writes (and beside config.json and
    styles.csv). Only files untouched for ``STALE_AFTER_S`` go, so writes begun meanwhile are safe."""
    return remove_stale_temp_files(written_folders(settings), shallow=[settings.data_dir])


def written_folders(settings: Settings) -> list[Path]:
    """The folder trees Atelier writes files into (atomically) below the data folder's top level: outputs, every
    model folder (downloads), the embeddings and the extensions' state (``data_dir/cache``); each tree once."""
    trees = [settings.outputs_dir, settings.models_dir, settings.data_dir / "cache", *settings.checkpoint_dirs,
             *settings.vae_folders, *settings.lora_folders, *settings.embedding_folders, *settings.upscaler_dirs]
    out: list[Path] = []
    for tree in dict.fromkeys(t.resolve() for t in trees):
        if tree.is_dir() and not any(tree.is_relative_to(other) for other in out):
            out = [o for o in out if not o.is_relative_to(tree)] + [tree]
    return out
