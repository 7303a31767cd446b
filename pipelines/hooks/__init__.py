"""Extension hook points: the registry of what extensions added (on the AppContext) and the per-job dispatcher."""

from pipelines.hooks.dispatch import JobHooks
from pipelines.hooks.registry import ExtensionLoadReport, ExtensionRegistry

__all__ = ["ExtensionLoadReport", "ExtensionRegistry", "JobHooks"]
