"""Evaluators: how compressors train and evaluate the model (NNI 3.0).

``LightningEvaluator`` and ``TransformersEvaluator`` load on first use, so importing this
package needs neither pytorch_lightning nor transformers.
"""
from typing import Any

from .base import Evaluator
from .torch_evaluator import TorchEvaluator

__all__ = ["Evaluator", "TorchEvaluator", "LightningEvaluator", "TransformersEvaluator"]


def __getattr__(name: str) -> Any:
    if name == "LightningEvaluator":
        from .lightning_evaluator import LightningEvaluator
        return LightningEvaluator
    if name == "TransformersEvaluator":
        from .transformers_evaluator import TransformersEvaluator
        return TransformersEvaluator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
