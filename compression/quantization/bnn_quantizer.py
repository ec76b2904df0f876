"""``BNNQuantizer`` (Courbariaux et al., arXiv 1602.02830): binary weights and activations.

Values become ``sign(x)`` (with ``sign(0) = +1``); the gradient is the straight-through estimator
cancelled where ``|x| > 1`` (the paper's "hard tanh" STE).  Quantize the weights of conv/linear
layers and the outputs of the activations that follow them (e.g. ``Hardtanh``), as in NNI's
VGG example.  The calibration config reports scale 1 and zero point 0 for every target.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from .fused import run_fused
from .quantizer import Quantizer
from .target import QuantMode, QuantTarget

__all__ = ["BNNQuantizer", "binarize"]


def binarize(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` in forward; gradient ``1{|x| <= 1}`` in backward."""
    sign = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
    clipped = torch.clamp(x, -1.0, 1.0)
    return clipped + (sign - clipped).detach()


class BNNQuantizer(Quantizer):
    """``BNNQuantizer(model, config_list, evaluator)``."""

    _required_evaluator_parts = ("training_func", "optimizers", "training_step")

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 existed_wrappers: Any = None):
        super().__init__(model, config_list, evaluator, existed_wrappers=existed_wrappers)

    def _quantize(self, qt: QuantTarget, value: torch.Tensor) -> torch.Tensor:
        if qt.mode is not QuantMode.QUANTIZE:
            return value
        qt.scale, qt.zero_point = torch.tensor(1.0), torch.tensor(0.0)
        return binarize(value)

    def _single_compress(self, max_steps: Optional[int], max_epochs: Optional[int]) -> None:
        run_fused(self, max_steps, max_epochs)
