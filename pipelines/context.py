"""The one explicitly constructed application context, passed down from launch.py."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.engine import Engine
from pipelines.models.store import ModelStore
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

    @classmethod
    def build(cls, settings: Settings, *, store: ModelStore | None = None) -> AppContext:
        for folder in settings.data_folders():
            folder.mkdir(parents=True, exist_ok=True)
        store = store or ModelStore(settings)
        selection = CheckpointSelection(store, settings.initial_model)
        upscalers = UpscalerRegistry(settings, store)
        styles = StyleStore(settings.styles_file)
        engine = Engine(settings, store, selection, upscalers, styles)
        return cls(settings=settings, store=store, selection=selection, upscalers=upscalers, engine=engine,
                   options=OptionsStore(settings, selection), styles=styles)
