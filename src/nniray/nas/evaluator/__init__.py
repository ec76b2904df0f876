"""``nniray.nas.evaluator`` (also ``nniray.retiarii.evaluator``)."""
from __future__ import annotations

from typing import Any

from .base import Evaluator, FunctionalEvaluator

__all__ = ["Evaluator", "FunctionalEvaluator"]


def __getattr__(name: str) -> Any:
    if name == "pytorch":
        import importlib
        return importlib.import_module(f"{__name__}.pytorch")
    raise AttributeError(f"module 'nniray.nas.evaluator' has no attribute {name!r}")
