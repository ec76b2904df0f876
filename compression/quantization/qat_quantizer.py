"""``QATQuantizer`` (Jacob et al., CVPR'18): quantization-aware training.

Weights are fake-quantized from their own min/max in every forward; activations from an
exponential moving average of their min/max (decay 0.99) tracked in training mode and frozen in
eval mode.  Quantization starts after ``quant_start_step`` optimizer steps (ranges are tracked
before that, so they have settled when it starts); a config may set its own ``quant_start_step``
(the v1 key).  Gradients: the straight-through estimator clipped to the representable range.
BN folding comes from ``fuse_names`` (see :mod:`.fusion`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from .fused import run_fused
from .quantizer import Quantizer
from .target import QuantMode, QuantTarget

__all__ = ["QATQuantizer"]


class QATQuantizer(Quantizer):
    """``QATQuantizer(model, config_list, evaluator, quant_start_step=0)``."""

    _required_evaluator_parts = ("training_func", "optimizers", "training_step")
    _extra_config_keys = ("quant_start_step",)
    ema_decay = 0.99

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 quant_start_step: int = 0, existed_wrappers: Any = None):
        if isinstance(quant_start_step, bool) or not isinstance(quant_start_step, int) or quant_start_step < 0:
            raise ValueError(f"QATQuantizer: quant_start_step must be an int >= 0, got {quant_start_step!r}")
        self.quant_start_step = quant_start_step
        self.step_count = 0
        super().__init__(model, config_list, evaluator, existed_wrappers=existed_wrappers)
        self._update_modes()

    def _start_step(self, qt: QuantTarget) -> int:
        value = qt.setting.get("quant_start_step")
        return self.quant_start_step if value is None else int(value)

    def _update_modes(self) -> None:
        for qt in self._iter_quant_targets():
            qt.mode = QuantMode.QUANTIZE if self.step_count >= self._start_step(qt) else QuantMode.OBSERVE
        self._refresh()

    def _after_step(self) -> None:
        self.step_count += 1
        self._update_modes()

    def _quantize(self, qt: QuantTarget, value: torch.Tensor) -> torch.Tensor:
        if qt.is_activation:
            if qt.module.training:
                qt.observe_ema(value, self.ema_decay)
            elif qt.tracked_min is None:
                qt.observe_minmax(value)
        else:
            qt.set_range(value)
        if qt.mode is QuantMode.OBSERVE:
            return value
        qt.update_qparams()
        return self._fake_quant(qt, value)

    def _fuse_preprocess(self, evaluator: Any) -> None:
        evaluator.patch_optimizer_step([], [self._after_step])

    def _single_compress(self, max_steps: Optional[int], max_epochs: Optional[int]) -> None:
        run_fused(self, max_steps, max_epochs)
