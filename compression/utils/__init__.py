"""Compression utilities (NNI 3.0 names).

* ``count_flops_params(model, x, custom_ops=None, verbose=True, mode='default')``
* ``export_masks`` / ``load_masks`` / ``apply_masks``: masks to and from disk, and into a model
* ``compute_sparsity(masks)``: pruned fraction overall and per target
* ``auto_set_denpendency_group_ids`` (NNI's spelling) and ``auto_set_dependency_group_ids``,
  ``ChannelDependency``, ``GroupDependency``: from :mod:`nniray.compression.speedup.dependency`
* ``SensitivityAnalysis``: from :mod:`nniray.compression.utils.sensitivity_analysis`
* ``TransformersEvaluator``, ``TorchEvaluator``, ``LightningEvaluator``, ``Evaluator`` (NNI 3.0 also exports them here)

Names load on first use, so the speedup and sensitivity modules are imported only when needed.
"""
import importlib
from typing import Any, Dict, Tuple

_LAZY: Dict[str, Tuple[str, str]] = {
    "count_flops_params": ("nniray.compression.utils.counter", "count_flops_params"),
    "export_masks": ("nniray.compression.utils.mask_io", "export_masks"),
    "load_masks": ("nniray.compression.utils.mask_io", "load_masks"),
    "apply_masks": ("nniray.compression.utils.mask_io", "apply_masks"),
    "compute_sparsity": ("nniray.compression.utils.sparsity", "compute_sparsity"),
    "auto_set_denpendency_group_ids": ("nniray.compression.speedup.dependency", "auto_set_denpendency_group_ids"),
    "auto_set_dependency_group_ids": ("nniray.compression.speedup.dependency", "auto_set_dependency_group_ids"),
    "ChannelDependency": ("nniray.compression.speedup.dependency", "ChannelDependency"),
    "GroupDependency": ("nniray.compression.speedup.dependency", "GroupDependency"),
    "SensitivityAnalysis": ("nniray.compression.utils.sensitivity_analysis", "SensitivityAnalysis"),
    "TransformersEvaluator": ("nniray.compression.evaluator.transformers_evaluator", "TransformersEvaluator"),
    # NNI 3.0's examples import the evaluators from here too (``from nni.compression.utils import TorchEvaluator``).
    "Evaluator": ("nniray.compression.evaluator", "Evaluator"),
    "TorchEvaluator": ("nniray.compression.evaluator", "TorchEvaluator"),
    "LightningEvaluator": ("nniray.compression.evaluator", "LightningEvaluator"),
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    spec = _LAZY.get(name)
    if spec is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attr = spec
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AttributeError(f"{name} is not available yet: {module_name} does not exist") from None
        raise
    if name == "auto_set_dependency_group_ids" and not hasattr(module, attr):
        attr = "auto_set_denpendency_group_ids"  # the correctly spelled alias of NNI's name
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"{name} is not available yet: {module_name} has no {attr!r}") from None
