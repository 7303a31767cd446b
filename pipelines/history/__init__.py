"""The searchable history of every image Atelier saves (and those already in the outputs folder)."""

from pipelines.history.history import History, HistoryNotFoundError
from pipelines.history.records import HistoryEntry, HistoryPage, HistoryQuery, ScanReport

__all__ = ["History", "HistoryEntry", "HistoryNotFoundError", "HistoryPage", "HistoryQuery", "ScanReport"]
