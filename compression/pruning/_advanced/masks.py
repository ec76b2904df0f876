"""Turning importance scores into 0/1 masks.

Every advanced pruner ends with "keep the most important k of n entries"; this module is the one
place that decides how k is rounded and how ties are broken, so the pruners agree with each other:

* ``floor(sparse_ratio * n)`` entries are pruned (NNI's ``int(sparsity * numel)``),
* the lowest scores are pruned first, and among equal scores the lower index is pruned first
  (a stable sort), so masks are deterministic and tests can state them exactly.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

__all__ = ["num_to_prune", "ratio_mask", "expand_dim_mask", "channel_scores", "fpgm_scores", "weight_scores", "weight_mask"]


def num_to_prune(sparse_ratio: float, n: int) -> int:
    """How many of ``n`` entries a ratio prunes: ``floor(ratio * n)`` with a small epsilon so that
    ratios computed in floating point (``0.3 * 10 = 2.9999999999999996``) still prune 3."""
    if not 0.0 <= sparse_ratio <= 1.0:
        raise ValueError(f"sparse_ratio must be in [0, 1], got {sparse_ratio}")
    return min(n, int(math.floor(sparse_ratio * n + 1e-9)))


def ratio_mask(scores: Tensor, sparse_ratio: float) -> Tensor:
    """A 0/1 float mask shaped like ``scores`` that zeroes the ``num_to_prune`` lowest scores."""
    flat = scores.detach().reshape(-1).float()
    k = num_to_prune(sparse_ratio, flat.numel())
    mask = torch.ones_like(flat)
    if k > 0:
        order = torch.sort(flat, stable=True).indices
        mask[order[:k]] = 0.0
    return mask.reshape(scores.shape)


def expand_dim_mask(dim_mask: Tensor, shape: torch.Size, dim: int = 0) -> Tensor:
    """Broadcast a 1-D mask over ``dim`` of a tensor of ``shape`` (e.g. an out-channel mask over a
    conv weight)."""
    view = [1] * len(shape)
    view[dim] = shape[dim]
    return dim_mask.reshape(view).expand(shape).clone()


def channel_scores(weight: Tensor, p: Optional[int] = 1, dim: int = 0) -> Tensor:
    """Per-slice Lp norm of ``weight`` along ``dim`` (dim 0: conv filters, linear rows)."""
    w = weight.detach().float().transpose(0, dim).reshape(weight.shape[dim], -1)
    return torch.linalg.vector_norm(w, ord=p, dim=1)


def fpgm_scores(weight: Tensor, dim: int = 0) -> Tensor:
    """FPGM: for each filter, the sum of distances to all other filters; the filters closest to the
    geometric median (smallest sum) are the most replaceable and are pruned first."""
    w = weight.detach().float().transpose(0, dim).reshape(weight.shape[dim], -1)
    return torch.cdist(w, w).sum(dim=1)


def weight_scores(weight: Tensor, algo: str) -> Tensor:
    """Importance of ``weight`` for one of the base algorithms: ``level`` (per element, |w|),
    ``l1`` / ``l2`` (per output channel norm) or ``fpgm`` (per output channel)."""
    if algo == "level":
        return weight.detach().abs().float()
    if algo == "l1":
        return channel_scores(weight, p=1)
    if algo == "l2":
        return channel_scores(weight, p=2)
    if algo == "fpgm":
        return fpgm_scores(weight)
    raise ValueError(f"pruning_algorithm must be one of 'level', 'l1', 'l2', 'fpgm', got {algo!r}")


def weight_mask(weight: Tensor, sparse_ratio: float, algo: str, old_mask: Optional[Tensor] = None) -> Tensor:
    """Mask for ``weight`` at ``sparse_ratio`` (relative to the whole tensor) by ``algo``.

    With ``old_mask`` the already-pruned entries (or channels) score lowest, so the new mask always
    contains the old one: iterative pruners only ever add to the pruned set.
    """
    scores = weight_scores(weight, algo)
    if old_mask is not None:
        # a channel is still alive while any of its entries is
        old = old_mask if algo == "level" else (old_mask.reshape(old_mask.shape[0], -1).sum(1) > 0).float()
        scores = torch.where(old > 0, scores, torch.full_like(scores, -float("inf")))
    mask = ratio_mask(scores, sparse_ratio)
    if algo == "level":
        return mask
    return expand_dim_mask(mask, weight.shape, 0)
