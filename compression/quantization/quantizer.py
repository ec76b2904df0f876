"""``Quantizer`` base class (NNI 3.0 interface).

A quantizer wraps the selected modules with the same :class:`~nniray.compression.base.ModuleWrapper`
pruners use: each quantized target gets an ``apply_fn`` on its target space that first applies a
pruning mask (when a pruner shares the wrapper) and then simulated quantization, so pruners,
quantizers and distillers combine through ``from_compressor``.

``compress(max_steps=None, max_epochs=None)`` returns ``(model, calibration_config)`` with the model
still wrapped (quantization simulated in forward); ``unwrap_model()`` gives back the float model with
its original modules.  ``calibration_config`` is
``{module_name: {target_name: {'scale', 'zero_point', 'quant_dtype', 'quant_bits', 'quant_scheme',
'granularity', 'tracked_min', 'tracked_max'}}}`` (tensors on the CPU).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

import torch

from ..base.compressor import Compressor
from ..base.config import INDEX_KEY
from ..base.setting import PruningSetting
from ..base.target_space import PruningTargetSpace, apply_mask
from ..base.wrapper import ModuleWrapper
from .config import QuantScheme, resolve_quant_targets, validate_quant_config_list
from .functional import QuantGrad, fake_quantize
from .fusion import FusionGroup
from .target import QuantMode, QuantTarget

__all__ = ["Quantizer", "CalibrationConfig"]

CalibrationConfig = Dict[str, Dict[str, Dict[str, Any]]]


class Quantizer(Compressor):
    """Base of quantizers.  Subclasses implement :meth:`_quantize` and :meth:`_single_compress`."""

    _default_op_types: Sequence[str] = ("Conv1d", "Conv2d", "Conv3d", "Linear")
    #: scheme used when a target's quant_scheme is None
    _default_weight_scheme = QuantScheme.SYMMETRIC
    _default_activation_scheme = QuantScheme.AFFINE
    #: schemes an algorithm cannot work with (checked at construction)
    _required_scheme: Optional[QuantScheme] = None
    #: backward of the fake quantization (NNI's ``quant_grad``); a :class:`QuantGrad` subclass
    quant_grad: Type[QuantGrad] = QuantGrad

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any = None,
                 existed_wrappers: Optional[Dict[str, ModuleWrapper]] = None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{type(self).__name__}: model must be a torch.nn.Module, got {type(model).__name__}")
        self.bound_model = model
        self.config_list = validate_quant_config_list(config_list, self._extra_config_keys)
        self.evaluator = evaluator
        self._check_evaluator()
        self._wrappers: Dict[str, ModuleWrapper] = dict(existed_wrappers or {})
        self._target_spaces: Dict[str, Dict[str, PruningTargetSpace]] = {}
        self._quant_targets: Dict[str, Dict[str, QuantTarget]] = {}
        self._fused_chain: List[Compressor] = []
        resolved = resolve_quant_targets(model, self.config_list, self._default_op_types, self._extra_config_keys)
        modules = dict(model.named_modules())
        for module_name, targets in resolved.items():
            wrapper = self._wrappers.get(module_name)
            if wrapper is None:
                if getattr(modules[module_name], "_nniray_wrapper", None) is not None and existed_wrappers is None:
                    raise RuntimeError(f"module {module_name!r} is already wrapped by another compressor; call "
                                       f"unwrap_model() on it first, or use {type(self).__name__}.from_compressor")
                wrapper = ModuleWrapper(modules[module_name], module_name)
                self._wrappers[module_name] = wrapper
            for target_name, (setting, index) in targets.items():
                ts = wrapper.target_spaces.get(target_name)
                if ts is None:
                    base = PruningSetting.get(type(modules[module_name]).__name__, target_name)
                    wrapper.add_target_space(PruningTargetSpace(module_name, target_name, modules[module_name],
                                                                base, index))
                    ts = wrapper.target_spaces[target_name]
                if getattr(ts, "_nniray_quant", None) is not None:
                    raise RuntimeError(f"{module_name}.{target_name} is already quantized by another quantizer; "
                                       f"a target can be quantized by one quantizer only")
                scheme = self._default_activation_scheme if ts.is_activation else self._default_weight_scheme
                qt = QuantTarget(ts, setting, index, scheme)
                self._check_target(qt)
                self._install(ts, qt)
                self._target_spaces.setdefault(module_name, {})[target_name] = ts
                self._quant_targets.setdefault(module_name, {})[target_name] = qt
        self._fusions: List[FusionGroup] = []
        for cfg in self.config_list:
            groups = cfg.get("fuse_names") or []
            selected = [m for m, t in resolved.items() if any(i == cfg[INDEX_KEY] for _, i in t.values())]
            for j, names in enumerate(groups):
                self._fusions.append(FusionGroup(model, names, f"config_list[{cfg[INDEX_KEY]}].fuse_names[{j}]",
                                                 selected))
        self._fusion_of = {id(g.first): g for g in self._fusions}
        self._is_wrapped = False
        self.wrap_model()

    # ---- targets -----------------------------------------------------------------------------
    def _check_target(self, qt: QuantTarget) -> None:
        if self._required_scheme is not None and qt.scheme is not self._required_scheme:
            raise ValueError(f"{qt.where}: {type(self).__name__} needs quant_scheme={self._required_scheme.value!r}, "
                             f"got {qt.scheme.value!r}")

    def _install(self, ts: PruningTargetSpace, qt: QuantTarget) -> None:
        previous = ts.apply_fn

        def apply(space: PruningTargetSpace, value: torch.Tensor) -> torch.Tensor:
            if previous is not None:
                value = previous(space, value)
            elif space.mask is not None:
                value = apply_mask(value, space.mask, space.apply_method)
            return self._forward_target(qt, value)

        ts.apply_fn = apply
        ts._nniray_quant = qt  # type: ignore[attr-defined]

    def _iter_quant_targets(self):
        for targets in self._quant_targets.values():
            yield from targets.values()

    def _forward_target(self, qt: QuantTarget, value: torch.Tensor) -> torch.Tensor:
        if qt.mode is QuantMode.BYPASS:
            return value
        if not qt.is_activation:
            group = self._fusion_of.get(id(qt.module))
            if group is not None and group.installed and qt.target_name == "weight":
                value = group.fold_weight(value)
        return self._quantize(qt, value)

    def _quantize(self, qt: QuantTarget, value: torch.Tensor) -> torch.Tensor:
        """Min/max quantization: weights from their own range, activations from tracked ranges."""
        if qt.mode is QuantMode.OBSERVE:
            if qt.is_activation:
                qt.observe_minmax(value)
            else:
                qt.set_range(value)
            return value
        if not qt.is_activation:
            qt.set_range(value)
            qt.update_qparams()
        elif qt.scale is None:
            qt.observe_minmax(value)
            qt.update_qparams()
        return self._fake_quant(qt, value)

    def _fake_quant(self, qt: QuantTarget, value: torch.Tensor) -> torch.Tensor:
        return fake_quantize(value, qt.expanded(qt.scale, value), qt.expanded(qt.zero_point, value), qt.dtype,
                             self.quant_grad, qt.quant_type)

    def _set_mode(self, mode: QuantMode) -> None:
        for qt in self._iter_quant_targets():
            qt.mode = mode
        self._refresh()

    def _refresh(self) -> None:
        for wrapper in self._wrappers.values():
            if wrapper.is_wrapped:
                wrapper._refresh_params()

    # ---- calibration config ------------------------------------------------------------------
    def get_calibration_config(self) -> CalibrationConfig:
        """Scales, zero points and ranges of every target quantized so far."""
        config: CalibrationConfig = {}
        for qt in self._iter_quant_targets():
            self._sync_qparams(qt)
            if qt.scale is None and not qt.is_activation:
                qt.set_range(self._weight_value(qt))
                qt.update_qparams()
            config.setdefault(qt.module_name, {})[qt.target_name] = qt.calibration()
        return config

    def _sync_qparams(self, qt: QuantTarget) -> None:
        """Bring ``qt.scale``/``zero_point`` up to date with learned parameters (LSQ)."""

    def update_calibration_config(self, calibration_config: CalibrationConfig) -> None:
        """Load scales/ranges (e.g. from a PtqQuantizer's result to start QAT from them)."""
        for module_name, targets in calibration_config.items():
            for target_name, entry in targets.items():
                qt = self._quant_targets.get(module_name, {}).get(target_name)
                if qt is None:
                    raise KeyError(f"update_calibration_config: {module_name}.{target_name} is not quantized by "
                                   f"this {type(self).__name__}")
                qt.load(entry)
        self._refresh()

    def _weight_value(self, qt: QuantTarget) -> torch.Tensor:
        wrapper = self._wrappers[qt.module_name]
        value = wrapper.original_params.get(qt.target_name, getattr(qt.module, qt.target_name)).detach()
        if qt.space.mask is not None:
            value = apply_mask(value, qt.space.mask, qt.space.apply_method)
        group = self._fusion_of.get(id(qt.module))
        if group is not None and group.installed:
            value = group.fold_weight(value)
        return value.detach()

    # ---- wrapping ----------------------------------------------------------------------------
    def _chain_quantizers(self) -> List["Quantizer"]:
        return [c for c in self._fused_chain + [self] if isinstance(c, Quantizer)]

    def wrap_model(self) -> None:
        super().wrap_model()
        for q in self._chain_quantizers():
            for g in q._fusions:
                g.install()
            q._refresh()

    def unwrap_model(self) -> None:
        """The float model back: original parameters, names, and the modules fusion replaced."""
        for q in self._chain_quantizers():
            for g in q._fusions:
                g.remove()
        super().unwrap_model()

    @classmethod
    def from_compressor(cls, compressor: Compressor, new_config_list: List[Dict[str, Any]], *args: Any,
                        evaluator: Any = None, **kwargs: Any) -> "Quantizer":
        """A quantizer on ``compressor``'s model and wrappers; a later ``compress()`` trains them together."""
        chain = list(getattr(compressor, "_fused_chain", [])) + [compressor]
        new = super().from_compressor(compressor, new_config_list, *args, evaluator=evaluator, **kwargs)
        new._fused_chain = chain
        return new

    # ---- fusion hooks (see :mod:`.fused`) -------------------------------------------------------
    def _fuse_preprocess(self, evaluator: Any) -> None:
        """Called before the shared training run (install step hooks, extra parameters)."""

    def _fuse_postprocess(self, evaluator: Any) -> None:
        """Called after the shared training run."""

    # ---- compress ----------------------------------------------------------------------------
    def compress(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None
                 ) -> Tuple[torch.nn.Module, CalibrationConfig]:
        if not self._is_wrapped:
            self.wrap_model()
        self._single_compress(max_steps, max_epochs)
        return self.bound_model, self.get_calibration_config()

    def _single_compress(self, max_steps: Optional[int], max_epochs: Optional[int]) -> None:
        raise NotImplementedError  # abstract: each algorithm decides how it calibrates or trains
