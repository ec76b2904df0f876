"""SensitivityAnalysis: how the validation metric reacts when one layer at a time is pruned.

For every analysed layer and every sparsity (ascending), the layer alone is pruned (all other
layers keep their original weights) and ``val_func`` is called.  The result is
``{layer_name: {sparsity: metric}}``; ``export`` writes it as CSV::

    layername,0.25,0.5,0.75
    conv1,0.6,0.55
    conv2,0.61,0.57,0.56

A row is shorter when the layer's analysis stopped early (``early_stop_mode``):

* ``minimize``: stop once the metric is below ``early_stop_value``;
* ``maximize``: stop once the metric is above ``early_stop_value``;
* ``dropped``: stop once the metric fell more than ``early_stop_value`` below the unpruned metric;
* ``raised``: stop once it rose more than ``early_stop_value`` above it.

The metric that triggers the stop is still recorded (as NNI does).

``already_pruned`` supports iterative use (SensitivityPruner): a layer already pruned to ratio
``a`` is analysed at ``a + (1 - a) * s``, i.e. ``s`` is relative to its remaining weights.

Pruning here simulates masks by zeroing weights in place (filters by L1/L2 norm or FPGM, or
single weights by magnitude) and restores the saved state dict afterwards, so the model is left as
it was given.  Analysing layers in parallel (e.g. one Ray task per ``specified_layers`` slice) is
left to the caller: this module imports no Ray.
"""
from __future__ import annotations

import copy
import csv
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["SensitivityAnalysis", "PRUNE_TYPES", "EARLY_STOP_MODES", "load_sensitivity_csv"]

_logger = logging.getLogger(__name__)

SUPPORTED_OP_TYPES = (nn.Conv1d, nn.Conv2d)
PRUNE_TYPES = ("l1", "l2", "fpgm", "level", "fine-grained")
EARLY_STOP_MODES = ("minimize", "maximize", "dropped", "raised")


def _refresh_wrappers(model: nn.Module) -> None:
    """Recompute the masked weights of pruner-wrapped modules after their originals changed."""
    for m in model.modules():
        wrapper = getattr(m, "_nniray_wrapper", None)
        if wrapper is not None and wrapper.is_wrapped:
            wrapper._refresh_params()


def _mask(weight: torch.Tensor, sparsity: float, prune_type: str) -> torch.Tensor:
    from nniray.compression.pruning._advanced.masks import weight_mask
    algo = "level" if prune_type in ("level", "fine-grained") else prune_type
    return weight_mask(weight, sparsity, algo)


class SensitivityAnalysis:
    """Per-layer sensitivity of a model to pruning.

    Parameters
    ----------
    model
        The model to analyse (a plain ``nn.Module``; it is restored after every layer).
    val_func
        Called as ``val_func(*val_args, **val_kwargs)``; returns the validation metric.
    sparsities
        Sparsities to test, sorted ascending and rounded to 2 decimals; default
        ``np.arange(0.1, 1.0, 0.1)``.
    prune_type
        ``'l1'`` (default) / ``'l2'`` / ``'fpgm'`` prune whole filters, ``'level'`` or
        ``'fine-grained'`` single weights.
    early_stop_mode, early_stop_value
        See the module docstring; both or neither.
    """

    def __init__(self, model: nn.Module, val_func: Callable[..., float], sparsities: Optional[Sequence[float]] = None,
                 prune_type: str = "l1", early_stop_mode: Optional[str] = None,
                 early_stop_value: Optional[float] = None):
        if not callable(val_func):
            raise TypeError(f"val_func must be callable, got {type(val_func).__name__}")
        if prune_type not in PRUNE_TYPES:
            raise ValueError(f"prune_type must be one of {PRUNE_TYPES}, got {prune_type!r}")
        if early_stop_mode is not None and early_stop_mode not in EARLY_STOP_MODES:
            raise ValueError(f"early_stop_mode must be one of {EARLY_STOP_MODES} or None, got {early_stop_mode!r}")
        if early_stop_mode is not None and early_stop_value is None:
            raise ValueError(f"early_stop_mode={early_stop_mode!r} needs early_stop_value (the threshold)")
        raw = np.arange(0.1, 1.0, 0.1) if sparsities is None else sorted(sparsities)
        self.sparsities: List[float] = [float(np.round(x, 2)) for x in raw]
        for s in self.sparsities:
            if not 0 < s < 1:
                raise ValueError(f"sparsities must lie in (0, 1), got {s}")
        self.model = model
        self.val_func = val_func
        self.prune_type = prune_type
        self.early_stop_mode = early_stop_mode
        self.early_stop_value = early_stop_value
        self.ori_state_dict = copy.deepcopy(model.state_dict())
        self.target_layer: Dict[str, nn.Module] = {
            name: m for name, m in model.named_modules() if isinstance(m, SUPPORTED_OP_TYPES)}
        self.already_pruned: Dict[str, float] = {name: 0.0 for name in self.target_layer}
        self.sensitivities: Dict[str, Dict[float, Any]] = {}
        self.ori_metric: Optional[float] = None

    @property
    def layers_count(self) -> int:
        return len(self.target_layer)

    def _need_to_stop(self, ori_metric: float, cur_metric: float) -> bool:
        mode, value = self.early_stop_mode, self.early_stop_value
        if mode is None:
            return False
        if mode == "minimize":
            return cur_metric < value
        if mode == "maximize":
            return cur_metric > value
        if mode == "dropped":
            return cur_metric < ori_metric - value
        return cur_metric > ori_metric + value  # raised

    def _prune_layer(self, name: str, sparsity: float) -> None:
        module = self.target_layer[name]
        wrapper = getattr(module, "_nniray_wrapper", None)
        # a model wrapped by a pruner computes with ``<name>_orig * mask``: prune the original,
        # ranking by the weight the model actually uses (already masked entries rank lowest)
        originals = wrapper.original_params if wrapper is not None and wrapper.is_wrapped else {}
        weight = originals.get("weight", module.weight)
        bias = originals.get("bias", module.bias)
        effective = weight.detach() * getattr(module, "weight_mask", 1.0) if originals else weight.detach()
        with torch.no_grad():
            mask = _mask(effective, sparsity, self.prune_type)
            weight.mul_(mask.to(weight.dtype))
            if bias is not None and self.prune_type not in ("level", "fine-grained"):
                # a removed filter takes its bias with it
                bias.mul_(mask.reshape(mask.shape[0], -1)[:, 0].to(bias.dtype))
        _refresh_wrappers(self.model)

    def analysis(self, val_args: Optional[Sequence[Any]] = None, val_kwargs: Optional[Dict[str, Any]] = None,
                 specified_layers: Optional[Sequence[str]] = None) -> Dict[str, Dict[float, Any]]:
        """Analyse every Conv1d/Conv2d layer (or only ``specified_layers``, in model order)."""
        val_args = list(val_args or [])
        val_kwargs = dict(val_kwargs or {})
        if specified_layers is not None:
            unknown = [n for n in specified_layers if n not in self.target_layer]
            if unknown:
                raise ValueError(f"specified_layers has {unknown}, which are not Conv1d/Conv2d layers of the model; "
                                 f"analysable layers: {list(self.target_layer)}")
        self.ori_metric = self.val_func(*val_args, **val_kwargs)
        names = [n for n in self.target_layer if specified_layers is None or n in specified_layers]
        try:
            for name in names:
                self.sensitivities[name] = {}
                for sparsity in self.sparsities:
                    real = (1.0 - self.already_pruned[name]) * sparsity + self.already_pruned[name]
                    # restart from the original weights: sparsities are tested independently
                    self._load(self.ori_state_dict)
                    self._prune_layer(name, real)
                    metric = self.val_func(*val_args, **val_kwargs)
                    _logger.info("Layer: %s Sparsity: %.2f Validation Metric: %.4f", name, real, metric)
                    self.sensitivities[name][sparsity] = metric
                    if self._need_to_stop(self.ori_metric, metric):
                        break
        finally:
            self._load(self.ori_state_dict)
        return self.sensitivities

    def _load(self, state_dict) -> None:
        self.model.load_state_dict(state_dict)
        _refresh_wrappers(self.model)

    def export(self, filepath) -> None:
        """CSV: header ``layername,<sparsities>``, then one row per analysed layer."""
        with open(filepath, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["layername"] + [str(s) for s in self.sparsities])
            for name, row in self.sensitivities.items():
                writer.writerow([name] + [row[s] for s in sorted(row)])

    def update_already_pruned(self, layername: str, ratio: float) -> None:
        """Record that ``layername`` is already pruned to ``ratio`` (for iterative analysis)."""
        if layername not in self.already_pruned:
            raise ValueError(f"{layername!r} is not an analysable layer; known: {list(self.target_layer)}")
        self.already_pruned[layername] = float(ratio)

    def load_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Use ``state_dict`` as the weights the analysis starts from (and load it)."""
        self.ori_state_dict = copy.deepcopy(state_dict)
        self._load(self.ori_state_dict)


def load_sensitivity_csv(filepath) -> Dict[str, Dict[float, float]]:
    """Read a CSV written by :meth:`SensitivityAnalysis.export` back into the dict form."""
    with open(filepath, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if not header or header[0] != "layername":
            raise ValueError(f"{filepath} is not a sensitivity CSV: the header must start with 'layername'")
        sparsities = [float(x) for x in header[1:]]
        return {row[0]: {sparsities[i]: float(v) for i, v in enumerate(row[1:])} for row in reader if row}
