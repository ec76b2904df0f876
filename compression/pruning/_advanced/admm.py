"""The two ADMM sub-problems for weight pruning (Zhang et al., arXiv 1804.03294).

Pruning is written as ``min f(W)  s.t.  W in S`` (S: tensors with the wanted sparsity) and split
with an auxiliary ``Z in S`` and a scaled dual ``U``:

1. ``W <- argmin f(W) + rho/2 * ||W - Z + U||^2``: a few steps of ordinary training with the extra
   gradient ``rho * (W - Z + U)`` (added by a gradient hook, so any training loop works);
2. ``Z <- proj_S(W + U)``: the Euclidean projection onto S keeps the largest entries (fine-grained)
   or the output channels with the largest L2 norm (coarse-grained) and zeroes the rest;
3. ``U <- U + W - Z``.

Masks are only produced after the last iteration (NNI: "Only in the final iteration, the mask will
be generated"): the support of the final ``Z``.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor

from .masks import channel_scores, expand_dim_mask, ratio_mask

__all__ = ["GRANULARITIES", "normalize_granularity", "projection_mask", "project", "ADMMState"]

GRANULARITIES = ("fine-grained", "coarse-grained")


def normalize_granularity(granularity: str) -> str:
    aliases = {"fine": "fine-grained", "fine-grained": "fine-grained", "coarse": "coarse-grained",
               "coarse-grained": "coarse-grained"}
    if granularity not in aliases:
        raise ValueError(f"granularity must be 'fine-grained' or 'coarse-grained', got {granularity!r}")
    return aliases[granularity]


def projection_mask(x: Tensor, sparse_ratio: float, granularity: str = "fine-grained") -> Tensor:
    """The 0/1 mask of the Euclidean projection of ``x`` onto the sparsity constraint."""
    if normalize_granularity(granularity) == "fine-grained":
        return ratio_mask(x.abs(), sparse_ratio)
    # removing whole output channels: the projection keeps the channels with the largest L2 norm
    return expand_dim_mask(ratio_mask(channel_scores(x, p=2), sparse_ratio), x.shape, 0)


def project(x: Tensor, sparse_ratio: float, granularity: str = "fine-grained") -> Tensor:
    """``proj_S(x)``: ``x`` with the entries outside the projection's support set to zero."""
    return x * projection_mask(x, sparse_ratio, granularity)


class ADMMState:
    """Z and U for every pruned weight, plus the gradient hooks that add the ADMM penalty."""

    def __init__(self, weights: Dict[str, Tensor], sparse_ratios: Dict[str, float], rhos: Dict[str, float],
                 granularity: str = "fine-grained"):
        self.granularity = normalize_granularity(granularity)
        self.weights = weights
        self.sparse_ratios = dict(sparse_ratios)
        self.rhos = dict(rhos)
        # Z starts at W and U at zero (the penalty is zero before the first projection)
        self.Z = {k: w.detach().clone() for k, w in weights.items()}
        self.U = {k: torch.zeros_like(w) for k, w in weights.items()}
        self._handles = []
        self.last_masks: Dict[str, Tensor] = {}

    def penalty_grad(self, name: str) -> Tensor:
        w = self.weights[name].detach()
        return self.rhos[name] * (w - self.Z[name] + self.U[name])

    def attach(self) -> None:
        """Add ``rho * (W - Z + U)`` to each weight's gradient, i.e. the gradient of
        ``rho/2 * ||W - Z + U||^2``."""
        self.detach()
        for name, w in self.weights.items():
            self._handles.append(w.register_hook(lambda grad, name=name: grad + self.penalty_grad(name)))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def projection_input(self) -> Dict[str, Tensor]:
        """``W + U`` for every weight: what the next Z-update projects."""
        return {name: w.detach() + self.U[name] for name, w in self.weights.items()}

    def update(self, masks: Optional[Dict[str, Tensor]] = None) -> None:
        """One Z-update (projection) and one U-update.

        ``masks`` are the projection's supports computed by the caller from
        :meth:`projection_input` (the pruner computes them with the config's groups and bounds);
        without them each weight is projected on its own ``sparse_ratio``.
        """
        for name, w in self.weights.items():
            w = w.detach()
            if masks is not None:
                mask = masks[name].to(device=w.device, dtype=w.dtype)
            else:
                mask = projection_mask(w + self.U[name], self.sparse_ratios[name], self.granularity)
            self.last_masks[name] = mask
            self.Z[name] = (w + self.U[name]) * mask
            self.U[name] = self.U[name] + w - self.Z[name]

    def masks(self) -> Dict[str, Tensor]:
        """Final masks: where the last projection kept weights (ties resolved like the projection)."""
        return {name: self.last_masks[name] if name in self.last_masks else
                projection_mask(self.weights[name].detach(), self.sparse_ratios[name], self.granularity)
                for name in self.weights}
