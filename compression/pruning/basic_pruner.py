"""One-shot magnitude pruners: LevelPruner, L1NormPruner, L2NormPruner, FPGMPruner (NNI 3.0).

All take ``(model, config_list, evaluator=None)`` and ``compress()`` (no max_steps/max_epochs)
returns ``(model, masks)``.  They differ in the per-block metric (higher = keep):

* Level: ``sum |w|`` per block; its default granularity is element-wise, i.e. ``|w|``.
* L1Norm: ``sum |w|`` per block; default granularity ``out_channel`` (whole filters / rows).
* L2Norm: ``sqrt(sum w^2)`` per block; default ``out_channel``.
* FPGM: for block ``i``, ``sum_j ||v_i - v_j||_2`` over the blocks of the same target (blocks near
  the geometric median are the most replaceable and are pruned first); default ``out_channel``.

Metrics are computed on the weights the model currently uses (mask applied), so weights pruned
earlier (e.g. by an earlier AGP step) stay the least important.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from ..base.compressor import Pruner
from ..base.sparsity import Key, SparsityError, block_vectors, reduce_blocks
from ..base.target_space import PruningTargetSpace

__all__ = ["LevelPruner", "L1NormPruner", "L2NormPruner", "FPGMPruner", "NormPruner"]

_CONV_LINEAR = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Linear"]


def _param_value(ts: PruningTargetSpace, pruner: Pruner) -> torch.Tensor:
    if ts.is_activation:
        raise SparsityError(f"{ts.where}: {type(pruner).__name__} ranks parameters by magnitude and cannot prune an "
                            f"input/output; use TaylorPruner or an activation pruner for '{ts.target_name}'")
    return ts.target.float()


_MODES = ("normal", "dependency_aware")


class _DependencyAwareMixin:
    """NNI v2's ``mode='dependency_aware'`` (with ``dummy_input``) as a compatibility path.

    ``L1NormPruner(model, config_list, mode='dependency_aware', dummy_input=x)`` (or the v2
    positional form ``L1NormPruner(model, config_list, 'dependency_aware', x)``) runs
    ``auto_set_denpendency_group_ids`` on the config_list first: channel-coupled layers prune the
    same channels, grouped convs prune evenly per group, and norms are aligned.  That is what the
    3.0 flow does explicitly.
    """

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any = None,
                 dummy_input: Any = None, *, mode: Optional[str] = None, existed_wrappers: Any = None):
        if isinstance(evaluator, str):  # v2 positional: (model, config_list, mode, dummy_input)
            if mode is not None:
                raise ValueError(f"{type(self).__name__}: mode given twice ({evaluator!r} and {mode!r})")
            mode, evaluator = evaluator, None
        mode = mode or "normal"
        if mode not in _MODES:
            raise ValueError(f"{type(self).__name__}: mode must be one of {list(_MODES)} (NNI v2), got {mode!r}; "
                             f"in the 3.0 flow use auto_set_denpendency_group_ids instead")
        if mode == "dependency_aware":
            if dummy_input is None:
                raise ValueError(f"{type(self).__name__}: mode='dependency_aware' needs dummy_input (a batch the "
                                 f"model accepts) to trace the channel dependencies")
            from ..speedup.dependency import auto_set_denpendency_group_ids
            config_list = auto_set_denpendency_group_ids(model, config_list, dummy_input)
        self.mode = mode
        super().__init__(model, config_list, evaluator, existed_wrappers=existed_wrappers)


class NormPruner(_DependencyAwareMixin, Pruner):
    """Base of L1/L2 (and Level): ``p``-norm of each block."""

    p: int = 1

    def _calculate_metrics(self, targets: Dict[Key, PruningTargetSpace],
                           block_sizes: Dict[Key, List[int]]) -> Dict[Key, torch.Tensor]:
        metrics = {}
        for key, ts in targets.items():
            w = _param_value(ts, self)
            if self.p == 1:
                metrics[key] = reduce_blocks(w.abs(), block_sizes[key])
            else:
                metrics[key] = reduce_blocks(w.pow(2), block_sizes[key]).sqrt()
        return metrics


class LevelPruner(NormPruner):
    """Magnitude pruning of single weights (or blocks, with a block ``granularity``).

    ``op_types: ['default']`` means every Conv/Linear/Embedding layer.
    """

    _default_granularity = "element"
    _default_op_types = _CONV_LINEAR + ["Embedding"]
    p = 1


class L1NormPruner(NormPruner):
    """Prunes the output channels (conv filters / linear rows) with the smallest L1 norm."""

    _default_op_types = _CONV_LINEAR
    p = 1


class L2NormPruner(NormPruner):
    """Prunes the output channels with the smallest L2 norm."""

    _default_op_types = _CONV_LINEAR
    p = 2


class FPGMPruner(_DependencyAwareMixin, Pruner):
    """Filter Pruning via Geometric Median: prunes the blocks closest to all others."""

    _default_op_types = _CONV_LINEAR

    def _calculate_metrics(self, targets: Dict[Key, PruningTargetSpace],
                           block_sizes: Dict[Key, List[int]]) -> Dict[Key, torch.Tensor]:
        metrics = {}
        for key, ts in targets.items():
            w = _param_value(ts, self)
            sizes = block_sizes[key]
            vectors = block_vectors(w, sizes).double()
            dist = torch.cdist(vectors, vectors).sum(dim=1)
            shape = [1 if b == -1 else s // b for s, b in zip(w.shape, sizes)]
            metrics[key] = dist.reshape(shape).to(w.dtype)
        return metrics
