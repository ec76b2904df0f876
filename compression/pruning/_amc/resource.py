"""How pruning a unit's output channels changes the *real* FLOPs/weights after speedup.

After ``ModelSpeedup`` a pruned output channel disappears from its layer and from every layer that
consumes it (the next conv's input channels, a Linear's input features), so the cost of layer
``j`` is ``cost_j * prod_u (1 - A[j, u] * s_u)``.  ``A`` is measured once per model: for each unit
``u``, prune half of its channels alone, speed up a copy of the model, and read every layer's
cost ratio: ``A[j, u] = (1 - after_j / before_j) / s_u``.  This is exact for the usual layouts
(costs proportional to in × out channels) and honest about the rest (a channel speedup has to
keep, e.g. in an undeclared residual dependency, gives ``A = 0``).
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List

import numpy as np
import torch
from torch import nn

from .env import ResourceModel

__all__ = ["probe_speedup_resource"]


def _costs(model: nn.Module, dummy_input: Any, target: str) -> Dict[str, float]:
    from nniray.compression.utils import count_flops_params
    _, _, results = count_flops_params(model, dummy_input, verbose=False)
    out: Dict[str, float] = {}
    for r in results:
        if target == "flops":
            out[r["name"]] = out.get(r["name"], 0.0) + float(r["flops"])
        else:
            weight = getattr(model.get_submodule(r["name"]), "weight", None)
            out[r["name"]] = float(weight.numel()) if weight is not None else 0.0
    return out


def _half_masks(model: nn.Module, unit: List[str]) -> (Dict[str, Dict[str, torch.Tensor]], float):
    modules = dict(model.named_modules())
    channels = modules[unit[0]].weight.shape[0]
    k = max(1, channels // 2)
    masks = {}
    for name in unit:
        w = modules[name].weight
        keep = torch.ones(w.shape[0], dtype=w.dtype, device=w.device)
        keep[:k] = 0
        masks[name] = {"weight": keep.reshape([-1] + [1] * (w.dim() - 1)).expand_as(w).clone()}
        if getattr(modules[name], "bias", None) is not None:
            masks[name]["bias"] = keep.clone()
    return masks, k / channels


def probe_speedup_resource(clean_model: nn.Module, dummy_input: Any, units: List[List[str]],
                           target: str = "flops") -> ResourceModel:
    """Measure ``A`` on copies of ``clean_model`` (an unwrapped model; it is not modified)."""
    from nniray.compression.speedup import ModelSpeedup
    base = _costs(clean_model, dummy_input, target)
    names = list(base)
    coeff = np.zeros((len(names), len(units)))
    for ui, unit in enumerate(units):
        model = copy.deepcopy(clean_model)
        masks, ratio = _half_masks(model, unit)
        ModelSpeedup(model, dummy_input, masks).speedup_model()
        after = _costs(model, dummy_input, target)
        for j, name in enumerate(names):
            if base[name] > 0:
                coeff[j, ui] = (1.0 - after.get(name, 0.0) / base[name]) / ratio
    return ResourceModel([base[n] for n in names], coeff, 0.0)
