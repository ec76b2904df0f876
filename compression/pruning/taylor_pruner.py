"""TaylorPruner (NNI 3.0; "TaylorFOWeightPruner" before): first-order Taylor importance.

For every target the pruner accumulates, over ``training_steps`` optimizer steps, the squared
first-order Taylor term of each element, ``(t * dL/dt)^2`` (``t`` = the weight as the model
uses it, or an input/output activation summed over the batch), and sums it per granularity block
(Molchanov et al., 2019).  Blocks with the smallest importance are pruned.

Needs an evaluator with ``training_func``, ``optimizers`` and ``training_step``.
"""
from __future__ import annotations

from typing import Any, Dict, List

import torch

from ..base.sparsity import Key, reduce_blocks
from ..base.target_space import PruningTargetSpace
from ._training import TrainingPruner

__all__ = ["TaylorPruner"]


class TaylorPruner(TrainingPruner):
    """``TaylorPruner(model, config_list, evaluator, training_steps)``.

    Default granularity: ``out_channel`` for parameters, ``per_channel`` for inputs/outputs.
    """

    _default_op_types = ["Conv1d", "Conv2d", "Conv3d", "Linear"]
    _supports_schedule = True  # LinearPruner/AGPPruner may drive it (importance collected between updates)

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 training_steps: int, existed_wrappers: Any = None):
        self._importance: Dict[Key, torch.Tensor] = {}
        self._collecting = False
        self._callbacks: List[tuple] = []
        super().__init__(model, config_list, evaluator, training_steps, existed_wrappers=existed_wrappers)

    # ---- collection ---------------------------------------------------------------------
    def _add(self, key: Key, value: torch.Tensor) -> None:
        value = value.detach().double()
        if key in self._importance:
            self._importance[key] += value
        else:
            self._importance[key] = value.clone()

    def _collect_param_grads(self) -> None:
        if not self._collecting:
            return
        for key, ts in self._metric_targets().items():
            if ts.is_activation:
                continue
            grad = ts.original.grad
            if grad is None:
                continue
            self._add(key, reduce_blocks((ts.target.double() * grad.double()).pow(2), self._block_sizes(ts)))

    def _activation_callback(self, ts: PruningTargetSpace, value: torch.Tensor) -> None:
        if not self._collecting or not ts.is_activation or not value.requires_grad or not ts.has_sparse_goal:
            return
        key = (ts.module_name, ts.target_name)
        sizes = self._block_sizes(ts)
        saved = value.detach()

        def hook(grad: torch.Tensor) -> None:
            self._add(key, reduce_blocks((saved.double() * grad.double()).pow(2), sizes))

        value.register_hook(hook)

    def _fuse_preprocess(self, evaluator: Any) -> None:
        self._importance.clear()
        self._collecting = True
        evaluator.patch_optimizer_step([self._collect_param_grads], [])
        for _, ts in self._iter_target_spaces():
            if ts.is_activation:
                ts.forward_callbacks.append(self._activation_callback)
                self._callbacks.append((ts, self._activation_callback))

    def _fuse_postprocess(self, evaluator: Any) -> None:
        self._collecting = False
        for ts, cb in self._callbacks:
            if cb in ts.forward_callbacks:
                ts.forward_callbacks.remove(cb)
        self._callbacks.clear()

    def _finish_collecting(self) -> None:
        super()._finish_collecting()
        self._collecting = False

    # ---- metric -------------------------------------------------------------------------
    def _calculate_metrics(self, targets: Dict[Key, PruningTargetSpace],
                           block_sizes: Dict[Key, List[int]]) -> Dict[Key, torch.Tensor]:
        metrics = {}
        for key, ts in targets.items():
            if key not in self._importance:
                raise RuntimeError(f"TaylorPruner: no gradient reached {ts.where} during training; the target must "
                                   f"take part in the loss (is the module used in forward?)")
            metrics[key] = self._importance[key].float()
        self._importance.clear()  # scheduled use: the next round collects afresh
        return metrics
