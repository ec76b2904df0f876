"""Default per-module-type target settings for pruning (NNI 3.0's ``PruningSetting``).

A config's selected module gets, for every target it names, a copy of its type's default setting;
config shorthand keys and ``target_settings`` then update that copy (see :mod:`.config`).
"""
from __future__ import annotations

import copy
from typing import Any, Dict

__all__ = ["PruningSetting", "INPUT_PREFIX", "OUTPUT_PREFIX", "is_activation_target"]

INPUT_PREFIX = "_input_"
OUTPUT_PREFIX = "_output_"

# Keys a pruning target setting may carry.  ``None`` means "not set".
_PARAM_DEFAULT: Dict[str, Any] = {
    "sparse_ratio": None,
    "max_sparse_ratio": None,
    "min_sparse_ratio": None,
    "sparse_threshold": None,
    "global_group_id": None,
    "dependency_group_id": None,
    "granularity": "default",
    "internal_metric_block": None,
    "apply_method": "mul",
}
# A bias follows its weight: bias[i] is masked iff weight row i is all masked.
_BIAS_DEFAULT: Dict[str, Any] = {
    "align": {"module_name": None, "target_name": "weight", "dims": [0]},
    "apply_method": "mul",
}
_ACTIVATION_DEFAULT: Dict[str, Any] = dict(_PARAM_DEFAULT)

SETTING_KEYS = frozenset(_PARAM_DEFAULT) | {"align"}


def is_activation_target(target_name: str) -> bool:
    return target_name.startswith(INPUT_PREFIX) or target_name.startswith(OUTPUT_PREFIX)


def _weight_bias() -> Dict[str, Dict[str, Any]]:
    return {"weight": copy.deepcopy(_PARAM_DEFAULT), "bias": copy.deepcopy(_BIAS_DEFAULT)}


class PruningSetting:
    """Registry ``module type name -> {target_name: default setting}``."""

    registry: Dict[str, Dict[str, Dict[str, Any]]] = {
        name: _weight_bias() for name in (
            "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
            "Linear", "Bilinear", "Embedding", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
        )
    }
    # Layers whose weight holds the output channels in dim 1 (ConvTranspose, HF Conv1D; see
    # ``layout.py``) get their bias aligned to weight dim 1 in ``config.resolve_targets``.

    @classmethod
    def register(cls, module_type: str, setting: Dict[str, Dict[str, Any]]) -> None:
        """Replace the default setting of ``module_type`` (NNI's ``PruningSetting.register``)."""
        cls.registry[module_type] = copy.deepcopy(setting)

    @classmethod
    def get(cls, module_type: str, target_name: str | None = None) -> Any:
        """A copy of the default for a type (or one of its targets).

        Unregistered types fall back to weight+bias defaults; activation targets
        (``_input_*``/``_output_*``) always get the activation default.
        """
        if target_name is not None and is_activation_target(target_name):
            return copy.deepcopy(_ACTIVATION_DEFAULT)
        setting = cls.registry.get(module_type)
        if setting is None:
            setting = _weight_bias()
        if target_name is None:
            return copy.deepcopy(setting)
        if target_name in setting:
            return copy.deepcopy(setting[target_name])
        return copy.deepcopy(_PARAM_DEFAULT)
