"""The one explicitly constructed application context, passed down from launch.py."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.engine import Engine
from pipelines.models.manager import ModelManager
from pipelines.options import OptionsStore
from pipelines.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    manager: ModelManager
    engine: Engine
    options: OptionsStore  # A1111's options (config.json), shared by the UI and the API

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        for folder in settings.data_folders():
            folder.mkdir(parents=True, exist_ok=True)
        manager = ModelManager(settings)
        return cls(settings=settings, manager=manager, engine=Engine(settings, manager),
                   options=OptionsStore(settings, manager))
