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

from typing import Dict, List

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


class NormPruner(Pruner):
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


class FPGMPruner(Pruner):
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
