"""NAS exploration strategies (``nniray.nas.strategy``, ``nniray.retiarii.strategy``): plain
Python, no Ray.  They run against an execution engine (see :mod:`.base`)."""
from __future__ import annotations

from typing import Any

from .base import (BaseStrategy, ExecutionEngine, InlineMutator, InvalidMutation, Model, ModelStatus, Mutator,
                   Sampler, SequentialEngine, budget_exhausted, dry_run_for_search_space, get_execution_engine,
                   get_targeted_model, is_stopped_exec, list_models, query_available_resources, set_execution_engine,
                   submit_models, wait_models)
from .evolution import RegularizedEvolution
from .grid_search import GridSearch
from .random_strategy import Random

__all__ = ["BaseStrategy", "Random", "GridSearch", "RegularizedEvolution", "TPEStrategy", "TPE", "PolicyBasedRL",
           "Model", "ModelStatus", "Mutator", "InlineMutator", "Sampler", "InvalidMutation", "ExecutionEngine",
           "SequentialEngine", "submit_models", "wait_models", "list_models", "query_available_resources",
           "is_stopped_exec", "budget_exhausted", "set_execution_engine", "get_execution_engine",
           "dry_run_for_search_space", "get_targeted_model"]


def __getattr__(name: str) -> Any:
    # TPE pulls in the HPO tuners; PolicyBasedRL pulls in tianshou and torch: load on use.
    if name in ("TPEStrategy", "TPE"):
        from .tpe_strategy import TPEStrategy
        return TPEStrategy
    if name == "PolicyBasedRL":
        from .rl import PolicyBasedRL
        return PolicyBasedRL
    raise AttributeError(f"module 'nniray.strategies.nas' has no attribute {name!r}")
