"""nniray.compression: model compression with the NNI 3.0 interface.

Users migrate from ``nni.compression`` by changing the import root::

    from nniray.compression import TorchEvaluator
    from nniray.compression.pruning import L1NormPruner
    from nniray.compression.speedup import ModelSpeedup
    from nniray.compression.utils import count_flops_params

Submodules load on first use; importing this package imports only torch-free code.
"""
from typing import Any

__all__ = ["TorchEvaluator", "LightningEvaluator", "TransformersEvaluator"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import evaluator
        return getattr(evaluator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
