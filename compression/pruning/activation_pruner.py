"""Activation-based filter pruners: ActivationAPoZRankPruner and ActivationMeanRankPruner.

Both watch the output of every target layer (after the named ``activation`` function is applied
to it) during ``training_steps`` optimizer steps of the evaluator's training loop, then prune the
output channels whose activations matter least:

* APoZ (Network Trimming, Hu et al. 2016): ``APoZ_c = sum_k sum_j [O_cj(k) == 0] / (N * M)``, the
  fraction of zeros of channel c over N samples and M positions.  Channels with the *highest*
  APoZ are pruned, i.e. the importance is ``1 - APoZ``.
* Mean activation (Molchanov et al. 2016, §2.2): the mean of channel c's activation over the same
  samples and positions; the *smallest* means are pruned.

The channel axis of an output is 1 for convolutions (``N, C, ...``) and the last axis for Linear
(``..., C``), so both prune the rows of the layer's weight (dim 0), like NNI.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "ActivationStatistics", "apoz_importance", "mean_importance",
           "ActivationAPoZRankPruner", "ActivationMeanRankPruner"]

ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "relu6": F.relu6,
    "gelu": F.gelu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "silu": F.silu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}


def resolve_activation(activation) -> Callable[[Tensor], Tensor]:
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}")
    return ACTIVATIONS[activation]


def _channel_first(output: Tensor, module: Optional[nn.Module]) -> Tensor:
    """Move the channel axis first and flatten the rest: ``(C, N*M)``."""
    if isinstance(module, nn.Linear) or output.dim() == 1:
        return output.reshape(-1, output.shape[-1]).transpose(0, 1)
    return output.transpose(0, 1).reshape(output.shape[1], -1)


class ActivationStatistics:
    """Running per-channel counts over every forward pass seen: zeros, sum and positions."""

    def __init__(self, activation="relu"):
        self.activation = resolve_activation(activation)
        self.zeros: Dict[str, Tensor] = {}
        self.sums: Dict[str, Tensor] = {}
        self.counts: Dict[str, int] = {}
        self.batches: Dict[str, int] = {}

    def update(self, name: str, output: Tensor, module: Optional[nn.Module] = None) -> None:
        act = _channel_first(self.activation(output.detach().float()), module)
        zeros = (act == 0).sum(dim=1).double()
        sums = act.sum(dim=1).double()
        if name in self.zeros:
            self.zeros[name] += zeros
            self.sums[name] += sums
            self.counts[name] += act.shape[1]
            self.batches[name] += 1
        else:
            self.zeros[name], self.sums[name] = zeros, sums
            self.counts[name], self.batches[name] = act.shape[1], 1

    def apoz(self, name: str) -> Tensor:
        return (self.zeros[name] / self.counts[name]).float()

    def mean(self, name: str) -> Tensor:
        return (self.sums[name] / self.counts[name]).float()


def apoz_importance(stats: ActivationStatistics, name: str) -> Tensor:
    """``1 - APoZ``: a channel that is zero more often is less important."""
    return 1.0 - stats.apoz(name)


def mean_importance(stats: ActivationStatistics, name: str) -> Tensor:
    return stats.mean(name)
