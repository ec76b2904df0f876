"""``PtqQuantizer``: post-training quantization with min/max observers.

``compress()`` switches every target to observing (values stay float), runs calibration data
through the evaluator (``evaluate()``; or ``train(max_steps, max_epochs)`` when a duration is given,
with the weights and BN statistics restored afterwards, so only the ranges are learned), then
freezes scales and zero points and simulates quantization.  With ``is_bias_correction=True`` the
mean output shift that weight quantization causes (``(W - Q(W)) E[x]``, Nagel et al. 2019) is
added to each quantized layer's bias (a bias is created for layers without one).
"""
from __future__ import annotations

import copy
import warnings
from typing import Any, Dict, List, Optional

import torch

from ..base.compressor import EvaluatorError
from .functional import fake_quantize
from .quantizer import Quantizer
from .target import QuantMode, QuantTarget

__all__ = ["PtqQuantizer"]


class PtqQuantizer(Quantizer):
    """``PtqQuantizer(model, config_list, evaluator, is_bias_correction=False)``."""

    _required_evaluator_parts = ("evaluating_func",)

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 is_bias_correction: bool = False, existed_wrappers: Any = None):
        self.is_bias_correction = bool(is_bias_correction)
        super().__init__(model, config_list, evaluator, existed_wrappers=existed_wrappers)
        self._calibrated = False
        # before compress() the model computes in float (NNI's observer quantizer records only then)
        self._set_mode(QuantMode.OBSERVE)

    def _weight_targets(self) -> List[QuantTarget]:
        return [qt for qt in self._iter_quant_targets() if qt.target_name == "weight"
                and isinstance(qt.module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))]

    def _calibrate(self, max_steps: Optional[int], max_epochs: Optional[int]) -> None:
        evaluator = self.evaluator
        model = self.bound_model
        evaluator.bind_model(model)
        try:
            if max_steps is None and max_epochs is None:
                evaluator.evaluate()
            else:
                missing = evaluator.missing_parts(["training_func", "optimizers", "training_step"])
                if missing:
                    raise EvaluatorError(f"PtqQuantizer.compress(max_steps/max_epochs) calibrates on training batches "
                                         f"and needs the evaluator's {', '.join(missing)}; or call compress() to "
                                         f"calibrate through evaluating_func")
                saved = copy.deepcopy(model.state_dict())
                try:
                    evaluator.train(max_steps, max_epochs)
                finally:
                    model.load_state_dict(saved)
        finally:
            evaluator.unbind_model()

    def _single_compress(self, max_steps: Optional[int], max_epochs: Optional[int]) -> None:
        for qt in self._iter_quant_targets():
            qt.tracked_min = qt.tracked_max = qt.scale = qt.zero_point = qt.input_mean = None
            qt.observed_batches = 0
        self._set_mode(QuantMode.OBSERVE)
        handles = []
        if self.is_bias_correction:
            for qt in self._weight_targets():
                def record(module: torch.nn.Module, args: Any, qt: QuantTarget = qt) -> None:
                    qt.observe_input_mean(args[0])
                    qt.observed_batches += 1
                handles.append(qt.module.register_forward_pre_hook(record))
        try:
            self._calibrate(max_steps, max_epochs)
        finally:
            for h in handles:
                h.remove()
        for qt in self._iter_quant_targets():
            if qt.is_activation:
                if qt.tracked_min is None:
                    raise RuntimeError(f"{qt.where}: calibration never ran {qt.module_name!r}, so its "
                                       f"{qt.target_name} range is unknown; check that evaluating_func runs the model "
                                       f"on data")
            else:
                qt.set_range(self._weight_value(qt))
            qt.update_qparams()
        self._set_mode(QuantMode.QUANTIZE)
        if self.is_bias_correction:
            self._correct_bias()
        self._calibrated = True

    def _correct_bias(self) -> None:
        for qt in self._weight_targets():
            if qt.input_mean is None:
                warnings.warn(f"{qt.where}: no input seen during calibration; bias not corrected", stacklevel=3)
                continue
            module = qt.module
            w = self._weight_value(qt)
            err = (w - fake_quantize(w, qt.expanded(qt.scale, w), qt.expanded(qt.zero_point, w), qt.dtype)).detach()
            mu = qt.input_mean.to(w)
            if isinstance(module, torch.nn.Linear):
                corr = err @ mu
            else:
                groups = module.groups
                out_c = err.shape[0]
                e = err.reshape(out_c, err.shape[1], -1).sum(-1).reshape(groups, out_c // groups, -1)
                corr = torch.einsum("goi,gi->go", e, mu.reshape(groups, -1)).reshape(out_c)
            group = self._fusion_of.get(id(module))
            if group is not None and group.installed:
                warnings.warn(f"{qt.where}: bias correction skipped on a fused module", stacklevel=3)
                continue
            with torch.no_grad():
                if isinstance(module.bias, torch.Tensor):
                    module.bias.add_(corr)
                else:
                    module.bias = torch.nn.Parameter(corr.clone())
