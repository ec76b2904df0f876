"""``nniray.nas``: neural architecture search on the same runtime as HPO (NNI 3.0's ``nni.nas``).

Light to import: submodules (``nn``, ``strategy``, ``evaluator``, ``experiment``, ``benchmark``)
load torch or the runtime only when used.
"""
from __future__ import annotations

from typing import Any

from .fixed import fixed_arch

__all__ = ["fixed_arch", "nn", "strategy", "evaluator", "experiment"]


def __getattr__(name: str) -> Any:
    import importlib
    if name in ("nn", "strategy", "evaluator", "experiment", "execution", "space", "utils", "benchmark",
                "benchmarks"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'nniray.nas' has no attribute {name!r}")
