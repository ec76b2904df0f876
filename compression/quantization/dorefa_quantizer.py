"""``DoReFaQuantizer`` (Zhou et al., arXiv 1606.06160).

With ``n = 2**bits - 1`` and ``quantize_n(v) = round(v * n) / n`` (straight-through round):

* weights: ``2 * quantize_n(tanh(w) / (2 * max|tanh(w)|) + 0.5) - 1`` (values in [-1, 1]);
* inputs/outputs: ``quantize_n(clamp(x, 0, 1))``.

The calibration config reports the grids: weights scale ``2 / n``, zero point ``n / 2`` (affine, as
DoReFa's weight grid is; a symmetric weight scheme is accepted with a warning, as in NNI);
activations scale ``1 / n``, zero point 0.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional

import torch

from .config import QuantScheme
from .functional import round_ste
from .fused import run_fused
from .quantizer import Quantizer
from .target import QuantMode, QuantTarget

__all__ = ["DoReFaQuantizer"]


class DoReFaQuantizer(Quantizer):
    """``DoReFaQuantizer(model, config_list, evaluator)``."""

    _required_evaluator_parts = ("training_func", "optimizers", "training_step")
    _default_weight_scheme = QuantScheme.AFFINE

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 existed_wrappers: Any = None):
        super().__init__(model, config_list, evaluator, existed_wrappers=existed_wrappers)
        for qt in self._iter_quant_targets():
            if not qt.is_activation and qt.scheme is not QuantScheme.AFFINE:
                warnings.warn(f"{qt.where}: DoReFa's weight grid is affine; quant_scheme='symmetric' is ignored",
                              stacklevel=2)

    def _quantize(self, qt: QuantTarget, value: torch.Tensor) -> torch.Tensor:
        if qt.mode is not QuantMode.QUANTIZE:
            return value
        n = float(2 ** qt.dtype.bits - 1)
        if qt.is_activation:
            qt.scale, qt.zero_point = torch.tensor(1.0 / n), torch.tensor(0.0)
            return round_ste(torch.clamp(value, 0.0, 1.0) * n) / n
        qt.scale, qt.zero_point = torch.tensor(2.0 / n), torch.tensor(n / 2.0)
        t = torch.tanh(value)
        t = t / (2 * t.detach().abs().max().clamp(min=1e-12)) + 0.5
        return 2 * (round_ste(t * n) / n) - 1

    def _single_compress(self, max_steps: Optional[int], max_epochs: Optional[int]) -> None:
        run_fused(self, max_steps, max_epochs)
