"""``Compressor`` and ``Pruner`` base classes (NNI 3.0 interface).

A compressor is built on a model and a config_list; construction validates the config list,
resolves every (module, target) it selects, checks the evaluator has what the algorithm needs,
and wraps the model (masks are applied in forward).  A pruner adds masks:

``masks = {module_name: {target_name: Tensor}}`` (0 = pruned, 1 = kept), ``get_masks()``,
``update_masks(masks)``, ``generate_masks()`` and ``compress(max_steps=None, max_epochs=None)``
which returns ``(model, masks)``.  After ``unwrap_model()`` the model has its original parameters
and names again, ready for ``ModelSpeedup(model, dummy_input, masks)``.

Subclasses implement ``_calculate_metrics()`` (one metric per granularity block; higher = keep)
and, if they need training, ``_single_compress(max_steps, max_epochs)`` plus the fusion hooks
``_fuse_preprocess(evaluator)`` / ``_fuse_postprocess(evaluator)`` that scheduled pruners call.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from nniray.errors import NniRayError

from .config import resolve_targets, validate_config_list
from .sparsity import (Key, SparsityError, align_masks, expand_blocks, generate_sparsity,
                       resolve_block_sizes)
from .target_space import PruningTargetSpace
from .wrapper import ModuleWrapper

__all__ = ["Compressor", "Pruner", "EvaluatorError", "Masks"]

_logger = logging.getLogger(__name__)

Masks = Dict[str, Dict[str, torch.Tensor]]


class EvaluatorError(NniRayError, ValueError):
    """The compressor needs a part of the evaluator that is missing."""


class Compressor:
    """Base of all compressors: config resolution, wrapping, evaluator checks.

    Parameters
    ----------
    model
        The model to compress (a ``torch.nn.Module``; a LightningModule for LightningEvaluator).
    config_list
        NNI 3.0 config list (legacy v2 keys are translated, see :mod:`nniray.compression.base.config`).
    evaluator
        A :class:`~nniray.compression.evaluator.Evaluator`, needed by algorithms that train.
    existed_wrappers
        Wrappers of an earlier compressor on the same model (used by :meth:`from_compressor`).
    """

    #: module types that ``op_types: ['default']`` stands for
    _default_op_types: Optional[Sequence[str]] = None
    #: algorithm-specific config keys accepted in config_list / target_settings
    _extra_config_keys: Sequence[str] = ()
    #: evaluator parts this algorithm needs ('training_func', 'optimizers', 'training_step',
    #: 'evaluating_func', 'dummy_input'); checked before any work
    _required_evaluator_parts: Sequence[str] = ()

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any = None,
                 existed_wrappers: Optional[Dict[str, ModuleWrapper]] = None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{type(self).__name__}: model must be a torch.nn.Module, got {type(model).__name__}")
        self.bound_model = model
        self.config_list = validate_config_list(config_list, self._extra_config_keys)
        self.evaluator = evaluator
        self._check_evaluator()
        self._wrappers: Dict[str, ModuleWrapper] = dict(existed_wrappers or {})
        self._target_spaces: Dict[str, Dict[str, PruningTargetSpace]] = {}
        resolved = resolve_targets(model, self.config_list, self._default_op_types, self._extra_config_keys)
        modules = dict(model.named_modules())
        for module_name, targets in resolved.items():
            wrapper = self._wrappers.get(module_name)
            if wrapper is None:
                wrapper = getattr(modules[module_name], "_nniray_wrapper", None)
                if wrapper is not None and existed_wrappers is None:
                    raise RuntimeError(f"module {module_name!r} is already wrapped by another compressor; call "
                                       f"unwrap_model() on it first, or use {type(self).__name__}.from_compressor")
                wrapper = ModuleWrapper(modules[module_name], module_name)
                self._wrappers[module_name] = wrapper
            for target_name, (setting, index) in targets.items():
                ts = PruningTargetSpace(module_name, target_name, modules[module_name], setting, index)
                wrapper.add_target_space(ts)
                self._target_spaces.setdefault(module_name, {})[target_name] = wrapper.target_spaces[target_name]
        self._is_wrapped = False
        self.wrap_model()

    # ---- evaluator --------------------------------------------------------------------------
    def _check_evaluator(self) -> None:
        parts = list(self._required_evaluator_parts)
        if not parts:
            return
        name = type(self).__name__
        if self.evaluator is None:
            raise EvaluatorError(f"{name} needs an evaluator providing {', '.join(parts)}; pass "
                                 f"evaluator=TorchEvaluator(training_func, optimizers, training_step, ...) "
                                 f"(or a LightningEvaluator / TransformersEvaluator)")
        missing_fn = getattr(self.evaluator, "missing_parts", None)
        missing = missing_fn(parts) if missing_fn is not None else []
        if missing:
            raise EvaluatorError(f"{name} needs the evaluator's {', '.join(missing)}, which "
                                 f"{type(self.evaluator).__name__} was built without; pass "
                                 f"{' and '.join(missing)} when creating the evaluator")

    # ---- construction from another compressor -------------------------------------------
    @classmethod
    def from_compressor(cls, compressor: "Compressor", new_config_list: List[Dict[str, Any]], *args: Any,
                        evaluator: Any = None, **kwargs: Any) -> "Compressor":
        """A new compressor on ``compressor``'s model that reuses its wrappers, so masks already
        generated stay applied (and are returned by ``get_masks()``) and its evaluator is reused.

        An ``evaluator`` given here while ``compressor`` has one is ignored with a warning.
        """
        if compressor.evaluator is not None:
            if evaluator is not None and evaluator is not compressor.evaluator:
                warnings.warn(f"{cls.__name__}.from_compressor: the given evaluator is ignored; the evaluator of "
                              f"{type(compressor).__name__} is used", stacklevel=2)
            evaluator = compressor.evaluator
        if not compressor._is_wrapped:
            compressor.wrap_model()
        # every compressor takes (model, config_list, evaluator, *algorithm args)
        new = cls(compressor.bound_model, new_config_list, evaluator, *args,
                  existed_wrappers=compressor._wrappers, **kwargs)
        compressor._is_wrapped = False  # the wrappers now belong to ``new``
        # the chain that one training run of ``new.compress(...)`` drives (see .fused)
        new._fused_chain = list(getattr(compressor, "_fused_chain", [])) + [compressor]
        return new

    # ---- wrapping ---------------------------------------------------------------------------
    def wrap_model(self) -> None:
        """Install the wrappers (done by the constructor; call again after ``unwrap_model()``)."""
        for wrapper in self._wrappers.values():
            wrapper.wrap()
        self._is_wrapped = True

    def unwrap_model(self) -> None:
        """Restore the original parameters and names; masks stay available from ``get_masks()``."""
        for wrapper in self._wrappers.values():
            wrapper.unwrap()
        self._is_wrapped = False

    def track_forward(self, *args: Any, **kwargs: Any) -> None:
        """Run one forward pass without gradient so input/output targets learn their shapes."""
        if not self._is_wrapped:
            raise RuntimeError("track_forward needs the wrapped model; call wrap_model() first")
        with torch.no_grad():
            self.bound_model(*args, **kwargs)

    def _iter_target_spaces(self, own_only: bool = True):
        if own_only:
            for module_name, targets in self._target_spaces.items():
                for target_name, ts in targets.items():
                    yield (module_name, target_name), ts
        else:
            for module_name, wrapper in self._wrappers.items():
                for target_name, ts in wrapper.target_spaces.items():
                    yield (module_name, target_name), ts

    def _get_dummy_input(self) -> Any:
        if self.evaluator is None:
            return None
        get = getattr(self.evaluator, "get_dummy_input", None)
        return get() if get is not None else None


class Pruner(Compressor):
    """Base of pruners: masks, metric → mask generation, one-shot ``compress``."""

    #: granularity used for ``'default'`` on parameters: 'element', 'out_channel', ... or a list
    _default_granularity: Any = "out_channel"
    #: True: ``compress()`` computes masks once and accepts no max_steps/max_epochs
    _one_shot = True

    # ---- masks ------------------------------------------------------------------------------
    def get_masks(self) -> Masks:
        """``{module_name: {target_name: mask}}`` for every target that has a mask (copies)."""
        masks: Masks = {}
        for (module_name, target_name), ts in self._iter_target_spaces(own_only=False):
            if ts.mask is not None:
                masks.setdefault(module_name, {})[target_name] = ts.mask.detach().clone()
        return masks

    def update_masks(self, masks: Masks) -> None:
        """Set masks (missing entries keep their current mask).  Each mask must broadcast to its target."""
        for module_name, targets in masks.items():
            wrapper = self._wrappers.get(module_name)
            if wrapper is None:
                raise KeyError(f"update_masks: {module_name!r} is not a compressed module; compressed modules are "
                               f"{sorted(self._wrappers)}")
            for target_name, mask in targets.items():
                ts = wrapper.target_spaces.get(target_name)
                if ts is None:
                    raise KeyError(f"update_masks: {module_name}.{target_name} is not a compression target; targets "
                                   f"of {module_name!r} are {sorted(wrapper.target_spaces)}")
                if mask is not None and not ts.is_activation and tuple(mask.shape) != tuple(ts.shape):
                    raise ValueError(f"update_masks: mask for {module_name}.{target_name} has shape "
                                     f"{tuple(mask.shape)}, the target has {tuple(ts.shape)}")
                ts.mask = mask
            if wrapper.is_wrapped:
                wrapper._refresh_params()

    def _block_sizes(self, ts: PruningTargetSpace) -> List[int]:
        if ts.shape is None:
            raise SparsityError(f"{ts.where}: the shape of this input/output is unknown; call "
                                f"pruner.track_forward(dummy_input) before compress()")
        return resolve_block_sizes(ts, ts.shape, self._default_granularity)

    def _metric_targets(self) -> Dict[Key, PruningTargetSpace]:
        return {k: ts for k, ts in self._iter_target_spaces() if ts.has_sparse_goal}

    def _calculate_metrics(self, targets: Dict[Key, PruningTargetSpace],
                           block_sizes: Dict[Key, List[int]]) -> Dict[Key, torch.Tensor]:
        """One metric per block for each target (higher = more important).  Subclasses implement."""
        raise NotImplementedError

    def generate_masks(self) -> Masks:
        """Compute masks from the current metrics and the targets' sparse goals (does not apply them)."""
        targets = self._metric_targets()
        block_sizes = {k: self._block_sizes(ts) for k, ts in targets.items()}
        metrics = self._calculate_metrics(targets, block_sizes) if targets else {}
        for k, m in metrics.items():
            expected = tuple(1 if b == -1 else s // b for s, b in zip(targets[k].shape, block_sizes[k]))
            if tuple(m.shape) != expected:
                raise RuntimeError(f"{type(self).__name__}: metric of {targets[k].where} has shape {tuple(m.shape)}, "
                                   f"expected {expected}")
        block_masks = generate_sparsity(targets, metrics, block_sizes)
        full: Dict[Key, torch.Tensor] = {}
        for k, bm in block_masks.items():
            ts = targets[k]
            full[k] = expand_blocks(bm, block_sizes[k], ts.shape, keep_broadcast=ts.is_activation)
        all_spaces = dict(self._iter_target_spaces(own_only=False))
        existing = {k: ts.mask for k, ts in all_spaces.items() if ts.mask is not None and k not in full}
        aligned = align_masks(all_spaces, {**existing, **full})
        own_keys = set(dict(self._iter_target_spaces()))
        masks: Masks = {}
        for (module_name, target_name), mask in aligned.items():
            if (module_name, target_name) in own_keys and ((module_name, target_name) in full
                                                           or all_spaces[(module_name, target_name)].align):
                masks.setdefault(module_name, {})[target_name] = mask
        return masks

    def _generate_scheduled_masks(self, schedule: Any,
                                  keys: Sequence[str] = ("sparse_ratio", "max_sparse_ratio", "min_sparse_ratio",
                                                         "sparse_threshold")) -> Masks:
        """``generate_masks()`` with each target's goal ``v`` (for ``keys``) replaced by ``schedule(v)``
        for this call only (used by scheduled pruners and movement pruning)."""
        saved = []
        for _, ts in self._iter_target_spaces():
            saved.append((ts, dict(ts.setting)))
            for k in keys:
                if ts.setting.get(k) is not None:
                    ts.setting[k] = schedule(ts.setting[k])
        try:
            return self.generate_masks()
        finally:
            for ts, setting in saved:
                ts.setting = setting

    # ---- compress ---------------------------------------------------------------------------
    def compress(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None) -> Tuple[torch.nn.Module, Masks]:
        """Prune; returns ``(model, masks)`` with the model still wrapped (masks applied in forward)."""
        if not self._is_wrapped:
            self.wrap_model()
        return self._single_compress(max_steps, max_epochs)

    def _single_compress(self, max_steps: Optional[int], max_epochs: Optional[int]) -> Tuple[torch.nn.Module, Masks]:
        if self._one_shot and (max_steps is not None or max_epochs is not None) and getattr(self, "_fused_chain", None):
            # fused mode (built with from_compressor): train the chain, masks regenerated after each step
            from .fused import run_fused
            run_fused(self, max_steps, max_epochs)
            return self.bound_model, self.get_masks()
        if self._one_shot and (max_steps is not None or max_epochs is not None):
            raise ValueError(f"{type(self).__name__} is one-shot: call compress() without max_steps/max_epochs "
                             f"(got max_steps={max_steps}, max_epochs={max_epochs}); to prune during training, "
                             f"use it inside LinearPruner/AGPPruner")
        self.update_masks(self.generate_masks())
        return self.bound_model, self.get_masks()

    # ---- fusion hooks used by scheduled pruners ---------------------------------------------
    def _fuse_preprocess(self, evaluator: Any) -> None:
        """Called before the evaluator trains (e.g. install gradient collectors)."""

    def _fuse_postprocess(self, evaluator: Any) -> None:
        """Called after the evaluator trained (e.g. remove collectors)."""
