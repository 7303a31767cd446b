"""Which checkpoint is selected: application state shared by the UI, the REST API and ``config.json``.

The model store only loads what it is asked for; this object remembers what the user picked
(the checkpoint selector, ``sd_model_checkpoint`` in ``/sdapi/v1/options``, ``--ckpt``).
"""

from __future__ import annotations

import threading

from pipelines.models.kinds import ModelType
from pipelines.models.loaded import LoadedModel
from pipelines.models.refs import ModelRecord
from pipelines.models.store import ModelStore
from pipelines.progress import ProgressFn, ignore_progress


class CheckpointSelection:
    """The selected checkpoint's name; the first installed one (else the default Hub model) until one is picked."""

    def __init__(self, store: ModelStore, initial: str | None = None) -> None:
        self._store = store
        self._name = initial
        self._lock = threading.Lock()
        self.loads_here = True  # False while cluster replicas run the jobs (pipelines/cluster): they load it

    @property
    def current(self) -> str:
        with self._lock:
            if self._name:
                return self._name
        installed = [r for r in self._store.records(ModelType.CHECKPOINT) if r.installed and not r.problem]
        return installed[0].name if installed else self._store.settings.default_model

    def select(self, query: str, on_progress: ProgressFn = ignore_progress) -> LoadedModel:
        """Load ``query`` now (downloading it if needed) and make it the selected checkpoint. While the jobs run on
        cluster replicas it is only found (an unknown name still raises) and selected: they load it, not this
        process; the model returned then holds the record and nothing in memory."""
        if not self.loads_here:
            record = self._store.resolve(query)
            with self._lock:
                self._name = record.name
            return LoadedModel(record, None, self._store.device, self._store.dtype)
        loaded = self._store.load(query, on_progress)
        with self._lock:
            self._name = loaded.record.name
        return loaded

    def record(self) -> ModelRecord | None:
        """The selected checkpoint's record, or None while it is a Hub model not yet downloaded."""
        from pipelines.errors import ModelNotFoundError

        try:
            return self._store.find(self.current)
        except ModelNotFoundError:
            return None
