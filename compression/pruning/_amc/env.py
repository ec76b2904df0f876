"""AMC's environment: walk the prunable layers, turn actions into feasible sparse ratios.

Resource model.  Each prunable layer ``i`` costs ``r_i`` (FLOPs per sample, or weight count);
pruning a fraction ``s_i`` of its output channels saves ``s_i * r_i``.  Layers that are not
targets keep their cost.  This is what a FLOPs counter reports on a *masked* model (it sees the
remaining filters, not the shrunk inputs of the next layer; NNI's counter documents the same), so
the constraint is checked on the quantity the user can measure without speedup.

Constraint.  The episode must remove at least ``target * R_total``.  At layer ``t`` the action is
clipped from below so that, even if every later layer is pruned at its cap, the budget is still
reachable, and from above by the layer's cap (AMC's ``lbound``/``rbound``).  Ratios are rounded to
whole channels, rounding the lower bound *up*, so the realised masks satisfy the constraint exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["LayerInfo", "measure_layers", "merge_units", "ResourceModel", "AMCEnv"]


@dataclass
class LayerInfo:
    name: str
    kind: int            # 1 conv, 0 linear
    in_channels: int
    out_channels: int
    stride: int
    kernel: int
    flops: float         # per sample, multiply-accumulates without bias
    params: float        # weight elements
    max_ratio: float = 1.0
    # the target layers this unit stands for (several for a dependency group; they prune the
    # same channels, so one action decides them all and their costs add up)
    members: List[str] = field(default_factory=list)

    def cost(self, target: str) -> float:
        return self.flops if target == "flops" else self.params


def _flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> float:
    batch = out.shape[0] if out.dim() > 1 else 1
    if isinstance(module, nn.modules.conv._ConvNd):
        k = math.prod(module.kernel_size) * module.in_channels // module.groups
        return out.numel() / batch * k
    if isinstance(module, nn.Linear):
        return out.numel() / batch * module.in_features
    return 0.0


def measure_layers(model: nn.Module, dummy_input, target_names: Sequence[str]) -> (List[LayerInfo], float, float):
    """One forward pass over ``dummy_input``: per-target layer info, and the model's total FLOPs
    and weight count over all Conv/Linear layers (the denominators of the budget)."""
    records: Dict[str, float] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            handles.append(m.register_forward_hook(
                lambda mod, i, o, name=name: records.__setitem__(name, records.get(name, 0.0) + _flops(mod, i[0], o))))
    try:
        with torch.no_grad():
            if isinstance(dummy_input, (tuple, list)):
                model(*dummy_input)
            elif isinstance(dummy_input, dict):
                model(**dummy_input)
            else:
                model(dummy_input)
    finally:
        for h in handles:
            h.remove()
    modules = dict(model.named_modules())
    infos = []
    for name in target_names:
        m = modules[name]
        is_conv = isinstance(m, nn.modules.conv._ConvNd)
        if name not in records:
            raise ValueError(f"layer {name!r} was not called by a forward pass over dummy_input; "
                             "exclude it in config_list or give a dummy_input that reaches it")
        infos.append(LayerInfo(
            name=name, kind=int(is_conv),
            in_channels=m.in_channels if is_conv else m.in_features,
            out_channels=m.out_channels if is_conv else m.out_features,
            stride=m.stride[0] if is_conv else 0, kernel=m.kernel_size[0] if is_conv else 1,
            flops=records[name], params=float(m.weight.numel()), members=[name]))
    total_flops = sum(records.values())
    total_params = float(sum(m.weight.numel() for n, m in modules.items()
                             if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))))
    return infos, total_flops, total_params


def merge_units(layers: List[LayerInfo], units: List[List[str]]) -> List[LayerInfo]:
    """One LayerInfo per unit: features of its first member, summed costs, the smallest cap."""
    by_name = {layer.name: layer for layer in layers}
    merged = []
    for unit in units:
        first = by_name[unit[0]]
        channels = {by_name[n].out_channels for n in unit}
        if len(channels) != 1:
            raise ValueError(f"dependency group {unit} has layers with different output channels {sorted(channels)}; "
                             "members of a dependency_group_id must prune the same channels")
        merged.append(LayerInfo(
            name=first.name, kind=first.kind, in_channels=first.in_channels, out_channels=first.out_channels,
            stride=first.stride, kernel=first.kernel, flops=sum(by_name[n].flops for n in unit),
            params=sum(by_name[n].params for n in unit), max_ratio=min(by_name[n].max_ratio for n in unit),
            members=list(unit)))
    return merged


class ResourceModel:
    """``remaining(s) = fixed + sum_j cost_j * prod_u (1 - A[j, u] * s_u)``.

    ``s_u`` is the ratio of unit ``u``; ``A[j, u]`` says how much of layer ``j``'s cost scales with
    unit ``u``'s kept channels (1 for the unit's own layers and, after speedup, for the layers that
    consume its channels).  The masked count is the special case ``A = identity``; it is linear.
    """

    def __init__(self, costs: Sequence[float], coeff: np.ndarray, fixed: float = 0.0):
        self.costs = np.asarray(costs, dtype=float)
        self.coeff = np.clip(np.asarray(coeff, dtype=float), 0.0, 1.0)
        self.fixed = float(fixed)

    @classmethod
    def linear(cls, unit_costs: Sequence[float], total: float) -> "ResourceModel":
        return cls(unit_costs, np.eye(len(unit_costs)), total - float(np.sum(unit_costs)))

    @property
    def total(self) -> float:
        return self.fixed + float(self.costs.sum())

    def remaining(self, ratios: Sequence[float]) -> float:
        s = np.zeros(self.coeff.shape[1])
        s[:len(ratios)] = ratios
        return self.fixed + float((self.costs * np.prod(1.0 - self.coeff * s[None, :], axis=1)).sum())


class AMCEnv:
    """State embedding, constraint clipping and resource book-keeping for one pruning episode."""

    N_STATES = 10

    def __init__(self, layers: List[LayerInfo], total_cost: float, sparse_ratio: float, target: str = "flops",
                 resource: Optional[ResourceModel] = None):
        if target not in ("flops", "params"):
            raise ValueError(f"target must be 'flops' or 'params', got {target!r}")
        self.layers = layers
        self.target = target
        self.sparse_ratio = float(sparse_ratio)
        self.costs = np.array([l.cost(target) for l in layers], dtype=float)
        self.resource = resource if resource is not None else ResourceModel.linear(self.costs, total_cost)
        self.total_cost = self.resource.total
        self.caps = np.array([self._round_down(l.max_ratio, l.out_channels) for l in layers])
        self.budget = (1.0 - self.sparse_ratio) * self.total_cost
        best = self.resource.remaining(self.caps)
        if best > self.budget + 1e-6:
            raise ValueError(
                f"sparse_ratio {sparse_ratio} of {target} cannot be reached: pruning every target layer at its "
                f"max_sparse_ratio removes only {1 - best / self.total_cost:.4f}; "
                "lower sparse_ratio, raise max_sparse_ratio or select more layers")
        feats = np.array([[i, l.kind, l.in_channels, l.out_channels, l.stride, l.kernel, l.cost(target)]
                          for i, l in enumerate(layers)], dtype=float)
        lo, hi = feats.min(0), feats.max(0)
        self._static = (feats - lo) / np.where(hi > lo, hi - lo, 1.0)
        self.reset()

    @staticmethod
    def _round_down(ratio: float, channels: int) -> float:
        return math.floor(ratio * channels + 1e-9) / channels

    def reset(self) -> np.ndarray:
        self.t = 0
        self.ratios: List[float] = []
        self.prev_action = 0.0
        return self.state()

    def removed(self) -> float:
        return self.total_cost - self.resource.remaining(self.ratios)

    def state(self) -> np.ndarray:
        t = min(self.t, len(self.layers) - 1)
        removed = self.removed() / self.total_cost
        rest = float(self.costs[t + 1:].sum()) / self.total_cost
        return np.concatenate([self._static[t], [removed, rest, self.prev_action]]).astype(np.float32)

    def _feasible(self, ratio: float) -> bool:
        """Can the budget still be met with ``ratio`` here and every later layer at its cap?"""
        trial = list(self.ratios) + [ratio] + list(self.caps[self.t + 1:])
        return self.resource.remaining(trial) <= self.budget + 1e-6

    def bounds(self) -> (float, float):
        """Feasible ratio range for the current layer given the ratios chosen so far: the fewest
        whole channels that keep the budget reachable (the resource falls monotonically with
        every ratio, so a bisection over channel counts finds it), up to the layer's cap."""
        t = self.t
        channels = self.layers[t].out_channels
        high_k = int(round(self.caps[t] * channels))
        lo, hi = 0, high_k
        if self._feasible(0.0):
            hi = 0
        while lo < hi:
            mid = (lo + hi) // 2
            if self._feasible(mid / channels):
                hi = mid
            else:
                lo = mid + 1
        return hi / channels, self.caps[t]

    def step(self, action: float) -> (np.ndarray, float, bool):
        """Apply ``action`` in [0, 1] (fraction of the layer's cap) to the current layer.
        Returns (next_state, realised ratio, done)."""
        low, high = self.bounds()
        channels = self.layers[self.t].out_channels
        wanted = float(np.clip(action, 0.0, 1.0)) * high
        ratio = min(max(round(wanted * channels) / channels, low), high)
        self.ratios.append(ratio)
        self.prev_action = ratio
        self.t += 1
        done = self.t == len(self.layers)
        return self.state(), ratio, done

    def remaining_cost(self, ratios: Sequence[float]) -> float:
        return self.resource.remaining(ratios)
