"""Persistence: the per-experiment SQLite store (behind the :class:`TrialStore` read port) and
the registry of experiments."""
from .registry import ExperimentRegistry, default_registry
from .sqlite_store import FINAL_STATUSES, ExperimentStore, FencedError, StoreVersionError
from .trial_store import (Changes, MetricRecord, MetricType, OptimizeMode, QueryError, SortOrder, TrialPage,
                          TrialQuery, TrialRecord, TrialStatus, TrialStore)

__all__ = ["ExperimentStore", "ExperimentRegistry", "default_registry", "FINAL_STATUSES", "FencedError",
           "StoreVersionError", "TrialStore", "TrialQuery", "TrialPage", "TrialRecord", "MetricRecord",
           "MetricType", "TrialStatus", "SortOrder", "OptimizeMode", "QueryError", "Changes"]
