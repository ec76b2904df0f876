"""``LsqQuantizer`` (Esser et al., ICLR'20) and ``LsqPlusQuantizer`` (Bhalgat et al., 2020).

LSQ learns one step size ``s`` per scale block (symmetric): ``x_q = round(clamp(x / s, qmin, qmax)) * s``
with a straight-through round and the step-size gradient scaled by ``1 / sqrt(n * qmax)``; ``s``
starts at ``2 * mean(|x|) / sqrt(qmax)``.  LSQ+ adds a learnable offset ``beta`` (affine):
``x_q = round(clamp((x - beta) / s, qmin, qmax)) * s + beta``, both starting from the min/max range.

The step sizes are extra parameters trained by the user's first optimizer (added through the
evaluator).  Weight step sizes are initialised at construction; activation step sizes on the first
training forward (or from ``track_forward``), and per-channel/block activation targets need
``track_forward(dummy_input)`` before ``compress()`` so their shape is known.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import torch

from .config import QuantScheme
from .functional import calculate_qparams, grad_scale, reduce_range, round_ste
from .fused import run_fused
from .quantizer import Quantizer
from .target import QuantMode, QuantTarget

__all__ = ["LsqQuantizer", "LsqPlusQuantizer"]


def _block_mean_abs(x: torch.Tensor, sizes: List[int]) -> torch.Tensor:
    lo, hi = reduce_range(x.abs(), sizes)  # only for the block shape
    view: List[int] = []
    dims: List[int] = []
    for s, b in zip(x.shape, sizes):
        b = s if b == -1 else b
        view += [s // b, b]
        dims.append(len(view) - 1)
    return x.detach().abs().reshape(view).mean(dim=dims).reshape(lo.shape)


def _positive(s: torch.Tensor) -> torch.Tensor:
    # an optimizer (Adam's fixed-size steps especially) can push a small step size below 0
    return s.abs() + 1e-8


class LsqQuantizer(Quantizer):
    """``LsqQuantizer(model, config_list, evaluator)``; needs ``quant_scheme='symmetric'`` (the default)."""

    _required_evaluator_parts = ("training_func", "optimizers", "training_step")
    _default_activation_scheme = QuantScheme.SYMMETRIC
    _required_scheme = QuantScheme.SYMMETRIC

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 existed_wrappers: Any = None):
        super().__init__(model, config_list, evaluator, existed_wrappers=existed_wrappers)
        for qt in self._iter_quant_targets():
            qt.mode = QuantMode.QUANTIZE
            if not qt.is_activation:
                self._init_params(qt, self._weight_value(qt))
        self._refresh()

    # ---- parameters --------------------------------------------------------------------------
    def _init_values(self, qt: QuantTarget, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        qmax = max(abs(qt.dtype.qmax), 1)
        s = 2 * _block_mean_abs(x, qt.sizes(x.shape)) / math.sqrt(qmax)
        return {"scale": torch.clamp(s, min=1e-8)}

    def _init_params(self, qt: QuantTarget, x: torch.Tensor) -> None:
        values = self._init_values(qt, x.detach())
        if qt.params:
            with torch.no_grad():
                for k, v in values.items():
                    qt.params[k].copy_(v.to(qt.params[k]).reshape(qt.params[k].shape))
        else:
            qt.params = {k: torch.nn.Parameter(v.to(x.device)) for k, v in values.items()}
        qt.lsq_initialised = True  # type: ignore[attr-defined]

    def _ensure_activation_params(self, qt: QuantTarget) -> None:
        """A placeholder before the shape is known (per-tensor), so the optimizer can hold it."""
        if qt.params:
            return
        shape = qt.space.activation_shape
        if shape is not None:
            self._init_params(qt, torch.ones(shape))
            qt.lsq_initialised = False  # type: ignore[attr-defined]
            return
        if qt.granularity not in (None, "default"):
            raise RuntimeError(f"{qt.where}: the shape of this {qt.target_name} is unknown; call "
                               f"quantizer.track_forward(dummy_input) before compress()")
        qt.params = {k: torch.nn.Parameter(torch.ones(v.shape)) for k, v in self._init_values(qt, torch.ones(1)).items()}
        qt.lsq_initialised = False  # type: ignore[attr-defined]

    def parameters(self) -> List[torch.nn.Parameter]:
        """The learnable step sizes (and offsets), e.g. to save them."""
        for qt in self._iter_quant_targets():
            if qt.is_activation:
                self._ensure_activation_params(qt)
        return [p for qt in self._iter_quant_targets() for p in qt.params.values()]

    # ---- forward -----------------------------------------------------------------------------
    def _quantize(self, qt: QuantTarget, value: torch.Tensor) -> torch.Tensor:
        if qt.mode is QuantMode.OBSERVE:
            return value
        if not qt.params and not qt.is_activation:
            self._init_params(qt, value)
        elif not qt.params:
            self._ensure_activation_params(qt)
        if not getattr(qt, "lsq_initialised", False):
            self._init_params(qt, value)
        for k, p in qt.params.items():
            if p.device != value.device:
                p.data = p.data.to(value.device)
        return self._lsq(qt, value)

    def _lsq(self, qt: QuantTarget, x: torch.Tensor) -> torch.Tensor:
        s = _positive(qt.params["scale"])
        n = max(x.numel() // max(s.numel(), 1), 1)
        g = 1.0 / math.sqrt(n * max(abs(qt.dtype.qmax), 1))
        s = qt.expanded(grad_scale(s, g), x)
        q = round_ste(torch.clamp(x / s, qt.dtype.qmin, qt.dtype.qmax))
        with torch.no_grad():
            qt.scale = s.detach().clone()
            qt.zero_point = torch.zeros_like(qt.scale)
        return q * s

    def _sync_qparams(self, qt: QuantTarget) -> None:
        if "scale" not in qt.params:
            return
        with torch.no_grad():
            qt.scale = _positive(qt.params["scale"]).detach().clone()
            if "offset" in qt.params:
                qt.zero_point = torch.clamp(torch.round(-qt.params["offset"].detach() / qt.scale),
                                            qt.dtype.qmin, qt.dtype.qmax)
            else:
                qt.zero_point = torch.zeros_like(qt.scale)

    def _fuse_preprocess(self, evaluator: Any) -> None:
        evaluator.patch_optim_param_group(self.parameters())

    def _single_compress(self, max_steps: Optional[int], max_epochs: Optional[int]) -> None:
        run_fused(self, max_steps, max_epochs)


class LsqPlusQuantizer(LsqQuantizer):
    """``LsqPlusQuantizer(model, config_list, evaluator)``; needs ``quant_scheme='affine'`` (the default)."""

    _default_weight_scheme = QuantScheme.AFFINE
    _default_activation_scheme = QuantScheme.AFFINE
    _required_scheme = QuantScheme.AFFINE

    def _init_values(self, qt: QuantTarget, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        lo, hi = reduce_range(x, qt.sizes(x.shape))
        scale, _ = calculate_qparams(lo, hi, qt.dtype, QuantScheme.AFFINE)
        return {"scale": scale, "offset": torch.clamp(lo, max=0.0) - qt.dtype.qmin * scale}

    def _lsq(self, qt: QuantTarget, x: torch.Tensor) -> torch.Tensor:
        s, beta = _positive(qt.params["scale"]), qt.params["offset"]
        n = max(x.numel() // max(s.numel(), 1), 1)
        g = 1.0 / math.sqrt(n * max(abs(qt.dtype.qmax), 1))
        se = qt.expanded(grad_scale(s, g), x)
        be = qt.expanded(grad_scale(beta, g), x)
        q = round_ste(torch.clamp((x - be) / se, qt.dtype.qmin, qt.dtype.qmax))
        with torch.no_grad():
            qt.scale = s.detach().clone()
            qt.zero_point = torch.clamp(torch.round(-beta.detach() / qt.scale), qt.dtype.qmin, qt.dtype.qmax)
        return q * se + be
