"""Persistence: the per-experiment SQLite store and the registry of experiments."""
from .registry import ExperimentRegistry, default_registry
from .sqlite_store import FINAL_STATUSES, ExperimentStore, FencedError

__all__ = ["ExperimentStore", "ExperimentRegistry", "default_registry", "FINAL_STATUSES", "FencedError"]
