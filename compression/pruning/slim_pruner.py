"""SlimPruner (Network Slimming, Liu et al. 2017), NNI 3.0 interface.

Every target with a sparse goal gets a trainable scaling factor per granularity block (a BN
weight, the default target, has one per channel), initialised to 1 and multiplied into the
target.  For ``training_steps`` optimizer steps the loss gets ``regular_scale * sum(|factor|)``
(L1 sparsity on the factors, as the paper puts on BN gammas); then the blocks with the smallest
``|factor|`` are pruned.  The learned factors are then folded into the parameters (so the model
computes exactly what it trained), and training continues with the masks.

Needs an evaluator with ``training_func``, ``optimizers`` and ``training_step``.
"""
from __future__ import annotations

from typing import Any, Dict, List

import torch

from ..base.sparsity import Key, expand_blocks
from ..base.target_space import PruningTargetSpace, apply_mask
from ._training import TrainingPruner

__all__ = ["SlimPruner"]


class SlimPruner(TrainingPruner):
    """``SlimPruner(model, config_list, evaluator, training_steps, regular_scale=1.)``.

    ``op_types: ['default']`` means BatchNorm1d/2d/3d.  The default granularity is one factor per
    element of the target (per channel for a BN weight).
    """

    _default_op_types = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]
    _default_granularity = "element"
    # LinearPruner/AGPPruner may drive it (NNI allows it): the factors train for the whole run and
    # each update prunes by the current |factor|; they are folded in once, at the end.
    _supports_schedule = True

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 training_steps: int, regular_scale: float = 1., existed_wrappers: Any = None):
        if isinstance(regular_scale, bool) or not isinstance(regular_scale, (int, float)) or regular_scale < 0:
            raise ValueError(f"SlimPruner: regular_scale must be a number >= 0, got {regular_scale!r}")
        self.regular_scale = float(regular_scale)
        self._scalers: Dict[Key, torch.nn.Parameter] = {}
        self._regularize = False
        super().__init__(model, config_list, evaluator, training_steps, existed_wrappers=existed_wrappers)

    def _make_apply(self, key: Key, sizes: List[int]):
        def apply(ts: PruningTargetSpace, value: torch.Tensor) -> torch.Tensor:
            scale = self._scalers[key]
            value = value * expand_blocks(scale, sizes, value.shape, keep_broadcast=True)
            return value if ts.mask is None else apply_mask(value, ts.mask, ts.apply_method)
        return apply

    def _fuse_preprocess(self, evaluator: Any) -> None:
        targets = self._metric_targets()
        if any(ts.is_activation and ts.shape is None for ts in targets.values()):
            dummy = self._get_dummy_input()
            if dummy is None:
                raise RuntimeError("SlimPruner: input/output targets need their shape before training; call "
                                   "pruner.track_forward(dummy_input) or give the evaluator a dummy_input")
            self.track_forward(*(dummy if isinstance(dummy, tuple) else (dummy,)))
        self._scalers.clear()
        self._folded = False
        for key, ts in targets.items():
            sizes = self._block_sizes(ts)
            shape = [1 if b == -1 else s // b for s, b in zip(ts.shape, sizes)]
            ref = ts.original if ts.original is not None else None
            device = ref.device if ref is not None else None
            self._scalers[key] = torch.nn.Parameter(torch.ones(shape, device=device))
            ts.apply_fn = self._make_apply(key, sizes)
        evaluator.patch_optim_param_group(list(self._scalers.values()))
        self._regularize = True
        evaluator.patch_loss(self._loss_patch)

    def _loss_patch(self, loss: torch.Tensor, batch: Any) -> torch.Tensor:
        if not self._regularize or not self._scalers:
            return loss
        reg = sum(s.abs().sum() for s in self._scalers.values())
        return loss + self.regular_scale * reg

    def _calculate_metrics(self, targets: Dict[Key, PruningTargetSpace],
                           block_sizes: Dict[Key, List[int]]) -> Dict[Key, torch.Tensor]:
        missing = [ts.where for k, ts in targets.items() if k not in self._scalers]
        if missing:
            raise RuntimeError(f"SlimPruner: no scaling factor was trained for {missing[0]}; call compress()")
        return {k: self._scalers[k].detach().abs().float() for k in targets}

    def _finish_collecting(self) -> None:
        super()._finish_collecting()
        self._fold()

    def _fuse_postprocess(self, evaluator: Any) -> None:
        # After a scheduled run (LinearPruner/AGPPruner) nothing has folded the factors yet.
        self._fold()

    def _fold(self) -> None:
        if getattr(self, "_folded", True):
            return
        self._folded = True
        self._regularize = False
        # Fold the learned factors into parameters so the pruned model computes what it trained.
        for key, scale in self._scalers.items():
            ts = dict(self._iter_target_spaces())[key]
            scale.requires_grad_(False)
            if not ts.is_activation:
                sizes = self._block_sizes(ts)
                with torch.no_grad():
                    ts.original.mul_(expand_blocks(scale.detach(), sizes, ts.shape, keep_broadcast=True))
                ts.apply_fn = None
        self._refresh_all()

    def _refresh_all(self) -> None:
        for wrapper in self._wrappers.values():
            if wrapper.is_wrapped:
                wrapper._refresh_params()
