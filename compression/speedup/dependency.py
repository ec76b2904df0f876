"""Channel- and group-dependency analysis over the concrete-traced graph.

Layers are *channel-dependent* when their output channels meet in an element-wise op
(``add``/``sub``/``mul``/``div``/``maximum``/``minimum``, e.g. the two branches of a residual
block) or a ``cat`` along a non-channel dimension, possibly through channel-preserving
ops (BatchNorm, activations, pooling, dropout, interpolation, permute/transpose which move
the channel dimension).  A depthwise conv (``groups == in == out``) passes its input's
channels straight through, so it joins its producers' set.  If dependent layers prune
different channel indices, speedup has to keep the union and gains nothing; giving them one
``dependency_group_id`` makes the pruner choose the same indices.

* :class:`ChannelDependency` — ``dependency_sets`` (list of sets of layer names), ``export``.
* :class:`GroupDependency` — ``{conv_name: min group divisor}`` for grouped convolutions.
* :func:`auto_set_denpendency_group_ids` (NNI's spelling) / :func:`auto_set_dependency_group_ids`.
* :func:`not_safe_to_prune` — layers whose channels reach a hard-coded ``view``/``reshape``.
"""
from __future__ import annotations

import copy
import csv
import math
import operator
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import torch
import torch.fx as fx
import torch.nn as nn

from ..base.layout import is_hf_conv1d
from .tracer import TraceResult, concrete_trace, values_from_graph_module

__all__ = ["ChannelDependency", "GroupDependency", "auto_set_denpendency_group_ids",
           "auto_set_dependency_group_ids", "not_safe_to_prune", "channel_groups"]

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
PRUNABLE_TYPES = CONV_TYPES + (nn.Linear, nn.Embedding)
_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)

_ELEMENTWISE = {operator.add, operator.iadd, operator.sub, operator.isub, operator.mul, operator.imul,
                operator.truediv, operator.itruediv, torch.add, torch.sub, torch.mul, torch.div,
                torch.maximum, torch.minimum, torch.max, torch.min}
_ELEMENTWISE_METHODS = {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "maximum", "minimum"}


def _is_prunable(m: nn.Module, types: Tuple[type, ...]) -> bool:
    """HuggingFace's Conv1D (GPT-2) is a Linear with a transposed weight (``layout.py``)."""
    return isinstance(m, types) or (nn.Linear in types and is_hf_conv1d(m))


class _UnionFind:
    def __init__(self):
        self.parent: Dict[str, str] = {}

    def add(self, x: str) -> None:
        self.parent.setdefault(x, x)

    def find(self, x: str) -> str:
        self.add(x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _trace(model, dummy_input, traced_model=None) -> TraceResult:
    if isinstance(traced_model, TraceResult):
        return traced_model
    if isinstance(traced_model, fx.GraphModule):
        return values_from_graph_module(traced_model, model, dummy_input)
    return concrete_trace(model, dummy_input)


def _tensor_inputs(node: fx.Node, values) -> List[fx.Node]:
    out: List[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs),
                    lambda n: out.append(n) if isinstance(values.get(n.name), torch.Tensor) else None)
    return out


def _arg(node: fx.Node, idx: int, name: str, default=None):
    if len(node.args) > idx:
        return node.args[idx]
    return node.kwargs.get(name, default)


class _ChannelFlow:
    """Which prunable layers' output channels flow into each tensor, and along which dim."""

    def __init__(self, model: nn.Module, trace: TraceResult, types: Tuple[type, ...]):
        self.model, self.trace, self.types = model, trace, types
        self.uf = _UnionFind()
        self.chan: Dict[str, Tuple[int, frozenset]] = {}
        self.layers: List[str] = []
        self.layer_input_sources: Dict[str, frozenset] = {}
        self.unsafe: Set[str] = set()
        # norm module name -> (channel dim, prunable layers whose channels reach its input)
        self.norm_input_sources: Dict[str, Tuple[int, frozenset]] = {}
        self._run()

    def _src(self, n: fx.Node):
        return self.chan.get(n.name)

    def _run(self) -> None:
        values = self.trace.values
        self.calls: Dict[str, int] = {}
        for node in self.trace.graph.nodes:
            if node.op == "call_module":
                self.calls[node.target] = self.calls.get(node.target, 0) + 1
        for node in self.trace.graph.nodes:
            v = values.get(node.name)
            if node.op in ("placeholder", "get_attr", "output") or not isinstance(v, torch.Tensor) or v.dim() == 0:
                continue
            ins = _tensor_inputs(node, values)
            first = ins[0] if ins else None
            fsrc = self._src(first) if first is not None else None
            if node.op == "call_module":
                m = self.model.get_submodule(node.target)
                if _is_prunable(m, PRUNABLE_TYPES):
                    if fsrc is not None:
                        self.layer_input_sources[node.target] = fsrc[1]
                    cdim = v.dim() - 1 if isinstance(m, (nn.Linear, nn.Embedding)) or is_hf_conv1d(m) else 1
                    members = {node.target}
                    depthwise = isinstance(m, nn.modules.conv._ConvNd) and not isinstance(
                        m, nn.modules.conv._ConvTransposeNd) and m.groups > 1 \
                        and m.groups == m.in_channels == m.out_channels
                    if _is_prunable(m, self.types) or depthwise:
                        self.layers.append(node.target) if _is_prunable(m, self.types) else None
                        self.uf.add(node.target)
                    if depthwise and fsrc is not None and fsrc[0] == 1:
                        for s in fsrc[1]:
                            self.uf.union(s, node.target)
                        members |= set(fsrc[1])
                    elif self.calls.get(node.target, 0) > 1 and fsrc is not None and _is_prunable(m, self.types) \
                            and fsrc[0] == (v.dim() - 1 if cdim == v.dim() - 1 else 1) \
                            and values[first.name].shape[fsrc[0]] == v.shape[cdim]:
                        # A shared (tied) layer called on its own output, or on inputs from different
                        # layers: one weight serves every call, so its output channels and the channels
                        # of everything it reads must be pruned alike.
                        for s in fsrc[1]:
                            self.uf.union(s, node.target)
                    self.chan[node.name] = (cdim, frozenset(members))
                    continue
                if fsrc is not None and isinstance(m, _NORM_TYPES):
                    self.norm_input_sources.setdefault(node.target, fsrc)
            target = node.target
            is_elementwise = (node.op == "call_function" and target in _ELEMENTWISE) or \
                             (node.op == "call_method" and target in _ELEMENTWISE_METHODS)
            if is_elementwise and len(ins) >= 1:
                srcs = []
                for i in ins:
                    s = self._src(i)
                    iv = values[i.name]
                    if s is None:
                        continue
                    # right-aligned broadcasting: the input's channel dim in output coordinates
                    odim = s[0] + (v.dim() - iv.dim())
                    if 0 <= odim < v.dim() and iv.shape[s[0]] == v.shape[odim] and v.shape[odim] > 1:
                        srcs.append((odim, s[1]))
                if srcs:
                    dims = {d for d, _ in srcs}
                    if len(dims) == 1:
                        allm = frozenset().union(*[m for _, m in srcs])
                        members = list(allm)
                        for a in members[1:]:
                            self.uf.union(members[0], a)
                        self.chan[node.name] = (srcs[0][0], allm)
                continue
            if (node.op == "call_function" and target in (torch.cat, torch.concat)) or \
                    (node.op == "call_method" and target == "cat"):
                dim = _arg(node, 1, "dim", 0)
                tensors = node.args[0] if node.args else node.kwargs.get("tensors", [])
                srcs = [self._src(t) for t in tensors if isinstance(t, fx.Node)]
                if srcs and all(s is not None for s in srcs):
                    cdims = {s[0] for s in srcs}
                    if len(cdims) == 1 and (dim % v.dim()) != next(iter(cdims)):
                        allm = frozenset().union(*[s[1] for s in srcs])
                        members = list(allm)
                        for a in members[1:]:
                            self.uf.union(members[0], a)
                        self.chan[node.name] = (next(iter(cdims)), allm)
                continue
            if fsrc is None:
                continue
            fv = values[first.name]
            if node.op == "call_method" and target in ("view", "reshape") or \
                    node.op == "call_function" and target is torch.reshape:
                shape_args = node.args[1:] if node.op == "call_method" else node.args[1:2]
                flat = []
                for a in shape_args:
                    flat.extend(a if isinstance(a, (tuple, list)) else [a])
                if any(isinstance(a, int) and a > 1 for a in flat):
                    self.unsafe |= set(fsrc[1])
                continue
            if node.op == "call_method" and target == "permute" or \
                    node.op == "call_function" and target is torch.permute:
                perm = node.args[1:] if node.op == "call_method" else node.args[1]
                if len(perm) == 1 and isinstance(perm[0], (tuple, list)):
                    perm = perm[0]
                perm = [p % fv.dim() for p in perm if isinstance(p, int)]
                if len(perm) == v.dim() and fsrc[0] in perm:
                    self.chan[node.name] = (perm.index(fsrc[0]), fsrc[1])
                continue
            if node.op == "call_method" and target == "transpose" or \
                    node.op == "call_function" and target is torch.transpose:
                d0, d1 = node.args[1] % fv.dim(), node.args[2] % fv.dim()
                c = fsrc[0]
                c = d1 if c == d0 else d0 if c == d1 else c
                self.chan[node.name] = (c, fsrc[1])
                continue
            # Channel-preserving by shape: same rank and same channel size (BN, activations,
            # pooling, dropout, interpolation, …).
            if v.dim() == fv.dim() and v.shape[fsrc[0]] == fv.shape[fsrc[0]]:
                self.chan[node.name] = fsrc

    def sets(self, members: Optional[Iterable[str]] = None) -> List[Set[str]]:
        names = list(dict.fromkeys(self.layers if members is None else members))
        groups: Dict[str, Set[str]] = {}
        for n in names:
            groups.setdefault(self.uf.find(n), set()).add(n)
        return list(groups.values())


class ChannelDependency:
    """Sets of layers whose output channels are coupled (NNI ``ChannelDependency``).

    ``prune_type='Filter'`` (NNI's default) considers convolution layers, so resnet18 gives
    its 12 sets; ``prune_type='All'`` also includes Linear and Embedding layers.
    """

    def __init__(self, model: nn.Module, dummy_input: Any, traced_model=None, prune_type: str = "Filter"):
        if prune_type not in ("Filter", "All"):
            raise ValueError(f"prune_type must be 'Filter' or 'All', got {prune_type!r}")
        self.model, self.dummy_input, self.prune_type = model, dummy_input, prune_type
        self.trace = _trace(model, dummy_input, traced_model)
        self.dependency_sets: List[Set[str]] = []
        self.build_dependency()

    def build_dependency(self) -> List[Set[str]]:
        types = CONV_TYPES if self.prune_type == "Filter" else PRUNABLE_TYPES
        self.flow = _ChannelFlow(self.model, self.trace, types)
        self.dependency_sets = self.flow.sets()
        self.dependency = {n: s for s in self.dependency_sets for n in s}
        return self.dependency_sets

    def export(self, filepath: str) -> None:
        """CSV: ``Dependency Set,Convolutional Layers`` then ``Set i,layer,layer,…``."""
        with open(filepath, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Dependency Set", "Convolutional Layers"])
            for i, s in enumerate(self.dependency_sets, 1):
                w.writerow([f"Set {i}"] + sorted(s))


class GroupDependency:
    """``{conv_name: min divisor}``: how many equal groups its filters must be pruned in.

    A conv with ``groups=g`` must prune its filters evenly over its ``g`` groups, and so must
    every layer feeding its input (its input channels are split into ``g`` groups); the
    divisor is the lcm of all such constraints (conv1 with groups=2 feeding conv2 with
    groups=4 gives conv1 → 4).
    """

    def __init__(self, model: nn.Module, dummy_input: Any, traced_model=None):
        self.model, self.dummy_input = model, dummy_input
        self.trace = _trace(model, dummy_input, traced_model)
        self.dependency: Dict[str, int] = {}
        self.build_dependency()

    def build_dependency(self) -> Dict[str, int]:
        flow = _ChannelFlow(self.model, self.trace, CONV_TYPES)
        constraints: Dict[str, List[int]] = {n: [] for n in flow.layers}
        for name in flow.layers:
            m = self.model.get_submodule(name)
            g = getattr(m, "groups", 1)
            # A depthwise conv adds no group constraint (NNI: "depthwise conv will not introduce
            # extra group dependency"): it joins its producers' channel set instead.
            if g > 1 and m.out_channels != g:
                constraints.setdefault(name, []).append(g)
                for parent in flow.layer_input_sources.get(name, ()):
                    constraints.setdefault(parent, []).append(g)
        self.dependency = {n: (math.lcm(*c) if c else 1) for n, c in constraints.items()}
        return self.dependency

    @property
    def dependency_sets(self) -> Dict[str, int]:
        return self.dependency

    def export(self, filepath: str) -> None:
        with open(filepath, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Conv layer", "Groups"])
            for name, g in self.dependency.items():
                w.writerow([name, g])


def channel_groups(model: nn.Module, dummy_input: Any, traced_model=None) -> List[Set[str]]:
    """Coupled sets over Conv, ConvTranspose, Linear and Embedding layers."""
    return ChannelDependency(model, dummy_input, traced_model, prune_type="All").dependency_sets


def not_safe_to_prune(model: nn.Module, dummy_input: Any, traced_model=None) -> List[str]:
    """Layers whose output channels reach a ``view``/``reshape`` with a hard-coded size.

    Pruning them changes the tensor size the reshape expects; exclude them from the
    config_list (NNI: ``not_safe_to_prune``).
    """
    trace = _trace(model, dummy_input, traced_model)
    flow = _ChannelFlow(model, trace, PRUNABLE_TYPES)
    return sorted(flow.unsafe)


def _select(model: nn.Module, config: Mapping[str, Any], index: int) -> List[str]:
    try:
        from nniray.compression.base.config import select_modules
    except ImportError:  # pragma: no cover - the compression core is absent
        select_modules = None
    default = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
               "Linear", "Embedding"]
    if select_modules is not None:
        return list(select_modules(model, config, index, default_op_types=default))
    op_types = [t for t in config.get("op_types", [])]
    if "default" in op_types:
        op_types = default
    names = config.get("op_names")
    return [n for n, m in model.named_modules() if n and (names is None or n in names)
            and (not op_types or type(m).__name__ in op_types)]


_RATIO_KEYS = ("sparse_ratio", "sparsity", "sparsity_per_layer", "total_sparsity")
_SELECT_KEYS = ("op_names", "op_names_re", "op_types", "exclude_op_names", "exclude_op_types",
                "exclude_op_names_re", "op_partial_names")


def _ratio(cfg: Mapping[str, Any]):
    for k in _RATIO_KEYS:
        if cfg.get(k) is not None:
            return cfg[k]
    if isinstance(cfg.get("target_settings"), dict):
        return cfg["target_settings"].get("weight", {}).get("sparse_ratio")
    return None


def _set_ratio(cfg: Dict[str, Any], ratio: Optional[float], index: int) -> None:
    """Write ``ratio`` under the 3.0 key, dropping the legacy ones (a config holding both
    ``sparsity`` and ``sparse_ratio`` is refused by the pruner)."""
    legacy_total = "total_sparsity" in cfg
    for k in _RATIO_KEYS:
        cfg.pop(k, None)
    if legacy_total:  # what trans_legacy_config_list makes of total_sparsity
        cfg.setdefault("global_group_id", f"_total_sparsity_config_{index}")
    if ratio is None:
        return
    ts = cfg.get("target_settings")
    if isinstance(ts, dict) and "sparse_ratio" in ts.get("weight", {}):
        ts["weight"]["sparse_ratio"] = ratio
    else:
        cfg["sparse_ratio"] = ratio


def _has_weight(model: nn.Module, name: str) -> bool:
    return isinstance(getattr(model.get_submodule(name), "weight", None), torch.Tensor)


def _norm_alignments(model: nn.Module, flow: "_ChannelFlow", pruned: Set[str],
                     same_mask: Mapping[str, Any]) -> Dict[str, str]:
    """``{norm_name: source_layer}`` for BatchNorm/InstanceNorm layers whose channels all come from
    pruned layers that prune identical indices (one layer, or one dependency group).

    Such a norm gives a constant ``beta - gamma*mean/std`` on a pruned channel; speedup removes the
    channel, so the masked model must mask the norm too (NNI 3.0 ``align``) to compute the same."""
    from .replacers import FOLLOWER_TYPES
    out: Dict[str, str] = {}
    for norm, (dim, members) in flow.norm_input_sources.items():
        m = model.get_submodule(norm)
        if dim != 1 or not members or not getattr(m, "affine", False) or getattr(m, "weight", None) is None:
            continue
        if not isinstance(m, FOLLOWER_TYPES) or norm in out:
            continue
        if not all(n in pruned for n in members):
            continue
        keys = {same_mask.get(n, ("self", n)) for n in members}
        if len(keys) != 1:
            continue  # members prune different channels: only their intersection is dead
        out[norm] = sorted(members)[0]
    return out


def auto_set_denpendency_group_ids(model: nn.Module, config_list: Sequence[Mapping[str, Any]],
                                   dummy_input: Any, traced_model=None, align_norms: bool = True,
                                   group_aware: bool = True) -> List[Dict[str, Any]]:
    """Return a new config_list where channel-coupled layers share a ``dependency_group_id``.

    Every selected Conv/ConvTranspose/Linear/Embedding layer that belongs to a coupled set
    (size > 1) gets its own config ``{'op_names': [name], ..., 'dependency_group_id': k}``;
    the other layers keep their original config (minus those names; a config left selecting
    nothing is dropped).  All members of a group get the smallest ratio among them (NNI requires
    equal ratios in a dependency group), written as ``sparse_ratio`` whatever key the user used.

    ``group_aware``: a layer whose filters feed (or are) a grouped conv gets
    ``internal_metric_block = groups`` (NNI 3.0), so the pruner prunes the same number of filters
    in every group and speedup can shrink the grouped conv (NNI v2 dependency-aware mode).

    ``align_norms``: every BatchNorm/InstanceNorm fed only by pruned layers gets a config whose
    ``weight``/``bias`` masks ``align`` to that layer's output channels, so the masked (wrapped)
    model computes exactly what ``ModelSpeedup`` produces.  The input list is not modified.
    """
    if not isinstance(config_list, (list, tuple)):
        raise TypeError(f"config_list must be a list of dicts, got {type(config_list).__name__}")
    config_list = [dict(c) for c in config_list]
    trace = _trace(model, dummy_input, traced_model)
    flow = _ChannelFlow(model, trace, PRUNABLE_TYPES)
    sets = flow.sets()
    coupled = {n: i for i, s in enumerate(sets) if len(s) > 1 for n in s}
    divisors = GroupDependency(model, dummy_input, traced_model=trace).dependency if group_aware else {}
    owner: Dict[str, int] = {}
    for idx, config in enumerate(config_list):
        if config.get("exclude"):
            continue
        for name in _select(model, config, idx):
            if _is_prunable(model.get_submodule(name), PRUNABLE_TYPES):
                owner[name] = idx  # a later config overrides an earlier one
    group_members: Dict[int, List[str]] = {}
    for name, idx in owner.items():
        if name in coupled:
            group_members.setdefault(coupled[name], []).append(name)
    groups = {k: v for k, v in group_members.items() if len(v) > 1}
    in_group = {n for members in groups.values() for n in members}

    def divisor(names: Iterable[str]) -> int:
        ds = [int(divisors.get(n, 1)) for n in names]
        return math.lcm(*ds) if ds else 1

    grouped_alone = {n for n in owner if n not in in_group and divisor([n]) > 1}
    split_names = in_group | grouped_alone

    new_list: List[Dict[str, Any]] = []
    for idx, config in enumerate(config_list):
        cfg = copy.deepcopy(dict(config))
        mine = [n for n, i in owner.items() if i == idx and n in split_names]
        if mine:
            cfg["exclude_op_names"] = list(cfg.get("exclude_op_names", [])) + mine
            rest = [n for n in _select(model, config, idx) if n not in mine and _has_weight(model, n)]
            if not rest:
                continue  # every layer it selected now has its own config below
        new_list.append(cfg)

    def own_config(name: str) -> Dict[str, Any]:
        base = copy.deepcopy(dict(config_list[owner[name]]))
        for k in _SELECT_KEYS:
            base.pop(k, None)
        base["op_names"] = [name]
        return base

    same_mask: Dict[str, Any] = {}
    for gid, (set_idx, members) in enumerate(sorted(groups.items())):
        ratios = [r for r in (_ratio(config_list[owner[n]]) for n in members) if r is not None]
        shared = min(ratios) if ratios else None
        block = divisor(members)
        for name in sorted(members):
            base = own_config(name)
            _set_ratio(base, shared, owner[name])
            base["dependency_group_id"] = gid
            if block > 1:
                base["internal_metric_block"] = block
            same_mask[name] = ("group", gid)
            new_list.append(base)
    for name in sorted(grouped_alone):
        base = own_config(name)
        _set_ratio(base, _ratio(config_list[owner[name]]), owner[name])
        base["internal_metric_block"] = divisor([name])
        new_list.append(base)
    if align_norms:
        pruned = {n for n in owner if _ratio(config_list[owner[n]])}
        candidates = _norm_alignments(model, flow, pruned, same_mask)
        candidates = _structurally_dead(model, dummy_input, trace, candidates)
        for norm, source in sorted(candidates.items()):
            new_list.append({"op_names": [norm], "target_names": ["weight", "bias"], "target_settings": {
                "weight": {"align": {"module_name": source, "target_name": "weight",
                                     "dims": [_out_dim(model.get_submodule(source))]}},
                "bias": {"align": {"module_name": source, "target_name": "weight",
                                   "dims": [_out_dim(model.get_submodule(source))]}}}})
    return new_list


def _structurally_dead(model: nn.Module, dummy_input: Any, trace: TraceResult,
                       candidates: Dict[str, str]) -> Dict[str, str]:
    """Keep the (norm, source) pairs where a pruned source channel really gives an all-zero norm
    input channel.  The channel flow follows shapes only: ``conv(x) + bias_term`` or a sigmoid
    between conv and norm keep the channel alive, and aligning the norm there would change the
    model.  Checked with speedup's own forward mask propagation on a copy whose sources have every
    second output channel zeroed."""
    if not candidates:
        return candidates
    from .mask_updater import Prober
    from .model_speedup import ModelSpeedup
    work = copy.deepcopy(model)
    masks = {}
    for source in set(candidates.values()):
        w = getattr(work.get_submodule(source), "weight", None)
        if not isinstance(w, torch.Tensor) or w.dim() < 1:
            continue
        od = _out_dim(work.get_submodule(source))
        keep = (torch.arange(w.shape[od]) % 2 == 1).to(w.dtype)
        view = [1] * w.dim()
        view[od] = w.shape[od]
        masks[source] = {"weight": keep.view(view).expand(w.shape).clone()}
    ms = ModelSpeedup(work, dummy_input, masks, logger=None)
    ms.model.eval()
    ms._apply_masks()
    ms._trace()
    direct = ms._direct_pass(Prober(ms._run, ms.trace.values))
    calls = {n.target: n for n in ms.nodes if n.op == "call_module"}
    out: Dict[str, str] = {}
    for norm, source in candidates.items():
        node = calls.get(norm)
        inp = ms._input_leaves(node)[0] if node is not None else None
        im = direct.get(inp.name) if inp is not None else None
        if not isinstance(im, torch.Tensor) or im.dim() < 2 or source not in masks:
            continue
        alive = (im != 0).any(dim=[d for d in range(im.dim()) if d != 1])
        pruned = torch.arange(alive.numel()) % 2 == 0
        if alive.numel() == pruned.numel() and not bool(alive[pruned].any()):
            out[norm] = source
    return out


def _out_dim(module: nn.Module) -> int:
    try:
        from nniray.compression.base.layout import out_channel_dim
    except ImportError:  # pragma: no cover
        return 0
    return out_channel_dim(module)


# Correct spelling; NNI's public name is the misspelled one above.
auto_set_dependency_group_ids = auto_set_denpendency_group_ids
