"""How sparse masks are: per target and overall."""
from __future__ import annotations

from typing import Dict, Tuple

import torch

__all__ = ["compute_sparsity"]


def compute_sparsity(masks: Dict[str, Dict[str, torch.Tensor]]) -> Tuple[float, Dict[str, Dict[str, float]]]:
    """``(overall, per_target)``: the fraction of masked (zero) positions over all mask elements,
    and ``{module_name: {target_name: fraction}}``.  Broadcast-form activation masks count their
    stored elements."""
    per: Dict[str, Dict[str, float]] = {}
    zeros = total = 0
    for module_name, targets in masks.items():
        for target_name, mask in targets.items():
            n = mask.numel()
            z = int((mask == 0).sum())
            per.setdefault(module_name, {})[target_name] = z / n if n else 0.0
            zeros += z
            total += n
    return (zeros / total if total else 0.0), per
