"""From metrics to masks: granularity blocks, ratio/threshold masks, global and dependency groups,
and ``align``.

Vocabulary: a target's tensor is cut into *blocks* by its granularity (``out_channel`` on a conv
weight ``[O, I, kh, kw]`` gives ``O`` blocks of ``I*kh*kw`` elements).  A pruner computes one
*metric* value per block (higher = more important); this module turns metrics into 0/1 masks.

Rules (NNI 3.0 semantics, with the choices written in ``docs/decisions/compression.md``):

* ``sparse_ratio r`` over ``n`` blocks prunes ``floor(r*n)`` blocks (``1e-6`` tolerance against
  float error, so ``0.3*10`` prunes 3); lowest metric first, ties broken by position (stable).
* ``sparse_threshold t`` prunes blocks with metric ``< t``; ``min/max_sparse_ratio`` then bound it.
* ``max_sparse_ratio``/``min_sparse_ratio`` bound the pruned fraction of each target.
* ``dependency_group_id``: members must have the same block layout and the same sparse goal; the
  group prunes the same block indices in every member, chosen from the summed metric.
* ``global_group_id``: members share one ``sparse_ratio`` over all their elements; blocks of all
  members are ranked by metric per element (metric / block size) and pruned from the lowest while
  the group total stays <= ``floor(r * total elements)`` and each member stays within its
  ``max_sparse_ratio`` (after each member is first pruned to its ``min_sparse_ratio``).
* ``align``: ``{'module_name', 'target_name', 'dims'}``: the mask is the source mask reduced to
  ``dims`` (a position is kept if any source element along the other dims is kept), broadcast into
  this target's shape.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from nniray.errors import NniRayError

from .layout import in_channel_dim, out_channel_dim
from .target_space import PruningTargetSpace

__all__ = ["SparsityError", "resolve_block_sizes", "reduce_blocks", "expand_blocks", "block_vectors",
           "generate_sparsity", "align_masks", "count_prune"]

_EPS = 1e-6

Key = Tuple[str, str]


class SparsityError(NniRayError, ValueError):
    pass


def count_prune(ratio: float, n: int) -> int:
    """How many of ``n`` blocks a ratio prunes: floor with a small tolerance."""
    return min(n, int(math.floor(ratio * n + _EPS)))


def resolve_block_sizes(ts: PruningTargetSpace, shape: Sequence[int], default: Any) -> List[int]:
    """Block size per dimension (-1: the whole dimension is one block) for a target's granularity.

    ``default`` is the pruner's granularity for ``'default'``: ``'element'`` (fine-grained),
    ``'out_channel'``, ``'in_channel'``, ``'per_channel'`` or a list.
    """
    gran = ts.granularity
    if gran == "default" or gran is None:
        gran = default
        if gran == "out_channel" and ts.is_activation:
            gran = "per_channel"
    ndim = len(shape)
    if gran == "element":
        sizes = [1] * ndim
    elif gran == "out_channel":
        if ts.is_activation:
            raise SparsityError(f"{ts.where}: granularity 'out_channel' is for parameters; use 'per_channel' "
                                f"or a block list for inputs/outputs")
        # ConvTranspose / HF Conv1D keep their output channels in weight dim 1 (layout.py)
        sizes = [-1] * ndim
        sizes[_weight_dim(ts, out=True, ndim=ndim)] = 1
    elif gran == "in_channel":
        if ts.is_activation:
            raise SparsityError(f"{ts.where}: granularity 'in_channel' is for parameters; use 'per_channel' "
                                f"or a block list for inputs/outputs")
        if ndim < 2:
            raise SparsityError(f"{ts.where}: granularity 'in_channel' needs a tensor with >= 2 dims, "
                                f"shape is {tuple(shape)}")
        sizes = [-1] * ndim
        sizes[_weight_dim(ts, out=False, ndim=ndim)] = 1
    elif gran == "per_channel":
        if not ts.is_activation:
            raise SparsityError(f"{ts.where}: granularity 'per_channel' is for inputs/outputs; use "
                                f"'out_channel' or 'in_channel' for parameters")
        sizes = [-1] * (ndim - 1) + [1]
    elif isinstance(gran, (list, tuple)):
        sizes = list(gran)
        if len(sizes) != ndim:
            raise SparsityError(f"{ts.where}: granularity {list(gran)} has {len(sizes)} block sizes but the "
                                f"target has {ndim} dims (shape {tuple(shape)})")
    else:
        raise SparsityError(f"{ts.where}: unknown granularity {gran!r}")
    if ts.is_activation:
        sizes[0] = -1  # the batch dimension is never a pruning axis
    for d, (s, b) in enumerate(zip(shape, sizes)):
        if b != -1 and s % b != 0:
            raise SparsityError(f"{ts.where}: block size {b} does not divide dim {d} of size {s} "
                                f"(shape {tuple(shape)}); choose a divisor")
    return sizes


def _weight_dim(ts: PruningTargetSpace, out: bool, ndim: int) -> int:
    module = getattr(ts, "module", None)
    if module is None or ts.target_name != "weight" or ndim < 2:
        return 0 if out else 1
    return out_channel_dim(module) if out else in_channel_dim(module)


def _split_shape(shape: Sequence[int], sizes: Sequence[int]) -> List[int]:
    out: List[int] = []
    for s, b in zip(shape, sizes):
        b = s if b == -1 else b
        out += [s // b, b]
    return out


def reduce_blocks(tensor: torch.Tensor, sizes: Sequence[int], op: str = "sum") -> torch.Tensor:
    """Per-block reduction: ``sum`` (of the values given) or ``max``; result has one entry per block."""
    split = tensor.reshape(_split_shape(tensor.shape, sizes))
    dims = tuple(range(1, split.dim(), 2))
    if op == "sum":
        return split.sum(dim=dims)
    if op == "max":
        return split.amax(dim=dims)
    raise ValueError(op)


def block_vectors(tensor: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """``[num_blocks, block_numel]``: each block flattened (for distance metrics such as FPGM)."""
    split = tensor.reshape(_split_shape(tensor.shape, sizes))
    outer = list(range(0, split.dim(), 2))
    inner = list(range(1, split.dim(), 2))
    n_blocks = int(torch.tensor([split.shape[d] for d in outer]).prod())
    return split.permute(outer + inner).reshape(n_blocks, -1)


def expand_blocks(block_mask: torch.Tensor, sizes: Sequence[int], shape: Sequence[int],
                  keep_broadcast: bool = False) -> torch.Tensor:
    """Inverse of :func:`reduce_blocks` for masks.  With ``keep_broadcast`` whole-dimension blocks
    stay size 1 (masks of activations, whose batch and spatial sizes vary)."""
    out = block_mask
    for d, (s, b) in enumerate(zip(shape, sizes)):
        if b == -1:
            if not keep_broadcast:
                out = out.expand(*out.shape[:d], s, *out.shape[d + 1:])
        elif b != 1:
            out = out.repeat_interleave(b, dim=d)
    return out.contiguous()


def _block_numel(shape: Sequence[int], sizes: Sequence[int]) -> int:
    n = 1
    for s, b in zip(shape, sizes):
        n *= s if b == -1 else b
    return n


class _Unit:
    """A pruning unit: one target, or a dependency group acting as one target."""

    def __init__(self, keys: List[Key], spaces: List[PruningTargetSpace], metric: torch.Tensor, block_numel: int):
        self.keys = keys
        self.spaces = spaces
        self.metric = metric.detach().flatten().double().cpu()  # masks are built on CPU, moved on update
        self.block_numel = block_numel
        self.n = self.metric.numel()
        self.pruned = torch.zeros(self.n, dtype=torch.bool)
        self.shape = metric.shape

    def _bound(self, name: str, pick) -> Optional[float]:
        values = [getattr(s, name) for s in self.spaces if getattr(s, name) is not None]
        return pick(values) if values else None

    @property
    def max_ratio(self) -> Optional[float]:
        return self._bound("max_sparse_ratio", min)

    @property
    def min_ratio(self) -> Optional[float]:
        return self._bound("min_sparse_ratio", max)

    def lowest(self, k: int) -> torch.Tensor:
        order = torch.argsort(self.metric, stable=True)
        mask = torch.zeros(self.n, dtype=torch.bool)
        mask[order[:k]] = True
        return mask


def _goal(ts: PruningTargetSpace) -> Tuple[Optional[float], Optional[float]]:
    return ts.sparse_ratio, ts.sparse_threshold


def generate_sparsity(spaces: Dict[Key, PruningTargetSpace], metrics: Dict[Key, torch.Tensor],
                      block_sizes: Dict[Key, List[int]]) -> Dict[Key, torch.Tensor]:
    """Block-level keep masks (1 keep / 0 prune, shaped like each metric) for targets with a goal."""
    # 1. dependency groups become single units
    dep_groups: "OrderedDict[Any, List[Key]]" = OrderedDict()
    units: List[_Unit] = []
    for key, metric in metrics.items():
        ts = spaces[key]
        if ts.dependency_group_id is not None:
            dep_groups.setdefault(ts.dependency_group_id, []).append(key)
        else:
            units.append(_Unit([key], [ts], metric, _block_numel(ts.shape, block_sizes[key])))
    for gid, keys in dep_groups.items():
        first = spaces[keys[0]]
        for k in keys[1:]:
            other = spaces[k]
            # Members may store their channels in weights of different rank (a depthwise conv's
            # [C,1,1,1] blocks and a Linear's [C,1]): what must match is the block layout once
            # size-1 dims are dropped, i.e. the same number of channels in the same order.
            if _squeezed(metrics[k].shape) != _squeezed(metrics[keys[0]].shape):
                raise SparsityError(
                    f"dependency_group_id {gid!r}: {first.where} has {tuple(metrics[keys[0]].shape)} blocks but "
                    f"{other.where} has {tuple(metrics[k].shape)}; members must prune the same number of "
                    f"channels (same size after granularity)")
            if _goal(other) != _goal(first):
                raise SparsityError(
                    f"dependency_group_id {gid!r}: {first.where} has sparse goal {_goal(first)} but {other.where} "
                    f"has {_goal(other)}; members of a dependency group need the same sparse_ratio/threshold")
            if other.global_group_id != first.global_group_id:
                raise SparsityError(f"dependency_group_id {gid!r}: members have different global_group_id "
                                    f"({first.global_group_id!r} vs {other.global_group_id!r})")
        total = sum(metrics[k].double().reshape(metrics[keys[0]].shape) for k in keys)
        numel = sum(_block_numel(spaces[k].shape, block_sizes[k]) for k in keys)
        units.append(_Unit(list(keys), [spaces[k] for k in keys], total, numel))

    # 2. global groups share one ratio; the rest are independent
    global_groups: "OrderedDict[Any, List[_Unit]]" = OrderedDict()
    for u in units:
        gid = u.spaces[0].global_group_id
        if gid is not None:
            global_groups.setdefault(gid, []).append(u)
        else:
            _local(u)
    for gid, members in global_groups.items():
        _global(gid, members)

    out: Dict[Key, torch.Tensor] = {}
    for u in units:
        keep = (~u.pruned).reshape(u.shape)
        for k in u.keys:
            out[k] = keep.reshape(metrics[k].shape).to(
                metrics[k].dtype if metrics[k].is_floating_point() else torch.float32)
    return out


def _squeezed(shape: Sequence[int]) -> Tuple[int, ...]:
    return tuple(int(s) for s in shape if s != 1)


def _metric_blocks(u: _Unit) -> int:
    """``internal_metric_block`` (NNI 3.0, set by ``auto_set_denpendency_group_ids`` from
    ``GroupDependency``): the unit's blocks are cut into that many equal consecutive parts (the
    filter groups of a grouped conv) and each part prunes the same number, so every group keeps
    equal counts and speedup can shrink the grouped conv without padding."""
    values = [s.setting.get("internal_metric_block") for s in u.spaces]
    values = [int(v) for v in values if v is not None and int(v) > 1]
    if not values:
        return 1
    g = math.lcm(*values)
    return g if u.n % g == 0 and u.n // g >= 1 else 1


def _bounded_count(u: _Unit, count: int) -> int:
    if u.max_ratio is not None:
        count = min(count, count_prune(u.max_ratio, u.n))
    if u.min_ratio is not None:
        count = max(count, count_prune(u.min_ratio, u.n))
    return count


def _local(u: _Unit) -> None:
    ratio, threshold = _goal(u.spaces[0])
    g = _metric_blocks(u)
    if ratio is not None and g > 1:
        per = u.n // g
        k = _bounded_count(u, count_prune(ratio, u.n)) // g
        order = torch.argsort(u.metric.view(g, per), dim=1, stable=True)[:, :k]
        pruned = torch.zeros(g, per, dtype=torch.bool)
        pruned.scatter_(1, order, True)
        u.pruned = pruned.view(-1)
    elif ratio is not None:
        u.pruned = u.lowest(_bounded_count(u, count_prune(ratio, u.n)))
    else:
        below = int((u.metric < threshold).sum())
        u.pruned = u.lowest(_bounded_count(u, below))


def _rank(values: torch.Tensor) -> torch.Tensor:
    """Position of each value in its stable ascending order (the inverse permutation)."""
    perm = torch.argsort(values, stable=True)
    rank = torch.empty_like(perm)
    rank[perm] = torch.arange(perm.numel())
    return rank


def _global(gid: Any, members: List[_Unit]) -> None:
    ratios = {u.spaces[0].sparse_ratio for u in members}
    if len(ratios) != 1 or None in ratios:
        if all(u.spaces[0].sparse_threshold is not None for u in members):
            for u in members:  # a threshold is already global: it is the same cut for every member
                _local(u)
            return
        where = ", ".join(u.spaces[0].where for u in members)
        raise SparsityError(f"global_group_id {gid!r}: members need one equal sparse_ratio, got "
                            f"{sorted(map(str, ratios))} ({where})")
    ratio = ratios.pop()
    total = sum(u.n * u.block_numel for u in members)
    goal = count_prune(ratio, total)
    pruned_elems = 0
    caps = []
    for u in members:
        if u.min_ratio is not None:
            u.pruned = u.lowest(count_prune(u.min_ratio, u.n))
            pruned_elems += int(u.pruned.sum()) * u.block_numel
        caps.append(count_prune(u.max_ratio, u.n) if u.max_ratio is not None else u.n)
    # Rank every block of every member by metric per element.  A member's blocks appear in this
    # order in its own ascending order, so its cap means "only its `cap` lowest blocks may go".
    scores = torch.cat([u.metric / u.block_numel for u in members])
    owner = torch.cat([torch.full((u.n,), i, dtype=torch.long) for i, u in enumerate(members)])
    index = torch.cat([torch.arange(u.n) for u in members])
    sizes = torch.tensor([u.block_numel for u in members], dtype=torch.long)[owner]
    rank = torch.cat([_rank(u.metric) for u in members])
    already = torch.cat([u.pruned for u in members])
    eligible = (rank < torch.tensor(caps, dtype=torch.long)[owner]) & ~already
    order = torch.argsort(scores, stable=True)
    order = order[eligible[order]]
    budget = goal - pruned_elems
    csum = torch.cumsum(sizes[order], 0)
    n_prefix = int((csum <= budget).sum())  # csum is increasing: the fitting blocks form a prefix
    chosen = [order[:n_prefix]]
    budget -= int(csum[n_prefix - 1]) if n_prefix else 0
    rest = order[n_prefix:]
    rest = rest[sizes[rest] <= budget] if budget > 0 else rest[:0]
    if rest.numel():
        # blocks of other (smaller) sizes may still fit after the first one that did not
        extra = []
        min_size = int(sizes[rest].min())
        for j in rest.tolist():
            if budget < min_size:
                break
            if int(sizes[j]) <= budget:
                extra.append(j)
                budget -= int(sizes[j])
        chosen.append(torch.tensor(extra, dtype=torch.long))
    chosen_t = torch.cat(chosen)
    for i, u in enumerate(members):
        u.pruned[index[chosen_t[owner[chosen_t] == i]]] = True


def align_masks(spaces: Dict[Key, PruningTargetSpace], masks: Dict[Key, torch.Tensor]) -> Dict[Key, torch.Tensor]:
    """Fill masks of targets with ``align`` from their sources (chains resolved in order)."""
    pending = [k for k, ts in spaces.items() if ts.align is not None]
    masks = dict(masks)
    while pending:
        progressed = False
        for key in list(pending):
            ts = spaces[key]
            src_key = (ts.align.get("module_name") or ts.module_name, ts.align["target_name"])
            if src_key not in spaces:
                raise SparsityError(f"{ts.where}: align source {src_key[0]}.{src_key[1]} is not a compression "
                                    f"target; add it to the config_list or set align=None")
            if src_key in pending:
                continue
            src = masks.get(src_key)
            pending.remove(key)
            progressed = True
            if src is None:
                continue  # the source has no mask (no sparse goal): nothing to align with
            masks[key] = _align_one(ts, src, ts.align["dims"])
        if not progressed:
            raise SparsityError(f"align settings form a cycle: {[spaces[k].where for k in pending]}")
    return masks


def _reduce_any(src: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
    kept = src != 0
    other = [d for d in range(src.dim()) if d not in dims]
    for d in sorted(other, reverse=True):
        kept = kept.any(dim=d)
    return kept


def _align_one(ts: PruningTargetSpace, src: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
    dims = [d % src.dim() for d in dims]
    kept = _reduce_any(src, dims).to(src.dtype if src.is_floating_point() else torch.float32)
    shape = ts.shape
    if shape is None:
        raise SparsityError(f"{ts.where}: shape unknown; run track_forward(dummy_input) first")
    shape = tuple(shape)
    if tuple(kept.shape) == shape:
        return kept.clone()
    # place the kept dims at the leading dims of the target and broadcast the rest
    if tuple(kept.shape) == shape[:kept.dim()]:
        view = kept.reshape(*kept.shape, *([1] * (len(shape) - kept.dim())))
        return view.expand(shape).clone()
    raise SparsityError(f"{ts.where}: cannot align with a source reduced to shape {tuple(kept.shape)}; the target "
                        f"has shape {shape}; choose align dims whose sizes match the target's leading dims")
