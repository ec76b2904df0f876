"""NNI 2.x's ``nni.retiarii`` import paths, on the one implementation in ``nniray.nas``."""
from __future__ import annotations

from typing import Any

from nniray.nas.fixed import fixed_arch
from nniray.strategies.nas.base import (InvalidMutation, Model, ModelStatus, Mutator, Sampler, budget_exhausted,
                                        get_execution_engine, is_stopped_exec, list_models,
                                        query_available_resources, set_execution_engine, submit_models, wait_models)
from nniray.trace import serialize

__all__ = ["fixed_arch", "model_wrapper", "basic_unit", "serialize", "Mutator", "Sampler", "Model", "ModelStatus",
           "InvalidMutation", "submit_models", "wait_models", "list_models", "query_available_resources",
           "is_stopped_exec", "budget_exhausted", "get_execution_engine", "set_execution_engine"]


def __getattr__(name: str) -> Any:
    if name in ("model_wrapper", "basic_unit"):
        from nniray.nas.nn import pytorch
        return getattr(pytorch, name)
    if name == "trace":
        from nniray.trace import trace
        return trace
    raise AttributeError(f"module 'nniray.retiarii' has no attribute {name!r}")
