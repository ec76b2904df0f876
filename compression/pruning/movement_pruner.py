"""MovementPruner (Movement Pruning, Sanh et al. 2020, arXiv 2005.07683), NNI 3.0 interface.

Each target with a sparse goal gets a score per granularity block (element-wise by default).
The model computes ``t * (mask + S - S.detach())`` (straight-through), so after backward
``S.grad = t * dL/dt'``; before every optimizer step the score moves by ``S -= S.grad``, i.e.
``S = -sum_steps t * grad``: weights moving away from zero gain score.

Masks are regenerated after every optimizer step once ``warmup_step`` steps have run:

* ``sparse_ratio`` targets prune the lowest scores at the cubic schedule
  ``final * (1 - (1 - (step - warmup_step) / (cooldown_begin_step - warmup_step))^3)``, which
  reaches ``final`` at ``cooldown_begin_step`` and stays there (masks can still change);
* ``sparse_threshold`` targets prune blocks whose ``sigmoid(S)`` is below the threshold, and the
  loss gets ``regular_scale * mean(sigmoid(S))`` over them (soft movement; ``regular_scale``
  affects only these targets).

Needs an evaluator with ``training_func``, ``optimizers`` and ``training_step``.  With neither
``max_steps`` nor ``max_epochs``, ``compress()`` trains ``cooldown_begin_step`` steps.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch

from ..base.compressor import Masks, Pruner
from ..base.sparsity import Key, expand_blocks
from ..base.target_space import PruningTargetSpace, apply_mask

__all__ = ["MovementPruner", "movement_ratio"]


def movement_ratio(final: float, step: int, warmup_step: int, cooldown_begin_step: int) -> float:
    """The cubic sparsity schedule of movement pruning at optimizer step ``step``."""
    if step <= warmup_step:
        return 0.0
    progress = min(1.0, (step - warmup_step) / (cooldown_begin_step - warmup_step))
    return final * (1.0 - (1.0 - progress) ** 3)


class MovementPruner(Pruner):
    """``MovementPruner(model, config_list, evaluator, warmup_step, cooldown_begin_step, regular_scale=1.)``."""

    _default_op_types = ["Linear", "Conv1d", "Conv2d", "Conv3d", "Embedding"]
    _default_granularity = "element"
    _required_evaluator_parts = ("training_func", "optimizers", "training_step")
    _one_shot = False

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 warmup_step: int, cooldown_begin_step: int, regular_scale: float = 1.,
                 existed_wrappers: Any = None):
        for name, v in (("warmup_step", warmup_step), ("cooldown_begin_step", cooldown_begin_step)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"MovementPruner: {name} must be an int, got {v!r}")
        if not 0 <= warmup_step < cooldown_begin_step:
            raise ValueError(f"MovementPruner: need 0 <= warmup_step < cooldown_begin_step, got warmup_step="
                             f"{warmup_step}, cooldown_begin_step={cooldown_begin_step}")
        if isinstance(regular_scale, bool) or not isinstance(regular_scale, (int, float)) or regular_scale < 0:
            raise ValueError(f"MovementPruner: regular_scale must be a number >= 0, got {regular_scale!r}")
        self.warmup_step = warmup_step
        self.cooldown_begin_step = cooldown_begin_step
        self.regular_scale = float(regular_scale)
        self._scores: Dict[Key, torch.Tensor] = {}
        self._step_count = 0
        super().__init__(model, config_list, evaluator, existed_wrappers=existed_wrappers)

    # ---- scores -------------------------------------------------------------------------
    def _make_apply(self, key: Key, sizes: List[int]):
        def apply(ts: PruningTargetSpace, value: torch.Tensor) -> torch.Tensor:
            score = expand_blocks(self._scores[key], sizes, value.shape, keep_broadcast=True)
            mask = ts.mask if ts.mask is not None else torch.ones((), device=value.device, dtype=value.dtype)
            mask = mask.to(device=value.device, dtype=value.dtype)
            if ts.apply_method == "add":  # mask as additive bias; the score still gets t * grad
                return apply_mask(value, mask, "add") + value * (score - score.detach())
            return value * (mask + score - score.detach())
        return apply

    def _fuse_preprocess(self, evaluator: Any) -> None:
        targets = self._metric_targets()
        if any(ts.is_activation and ts.shape is None for ts in targets.values()):
            dummy = self._get_dummy_input()
            if dummy is None:
                raise RuntimeError("MovementPruner: input/output targets need their shape before training; call "
                                   "pruner.track_forward(dummy_input) or give the evaluator a dummy_input")
            self.track_forward(*(dummy if isinstance(dummy, tuple) else (dummy,)))
        for key, ts in targets.items():
            sizes = self._block_sizes(ts)
            shape = [1 if b == -1 else s // b for s, b in zip(ts.shape, sizes)]
            device = ts.original.device if ts.original is not None else None
            self._scores[key] = torch.zeros(shape, device=device, requires_grad=True)
            ts.apply_fn = self._make_apply(key, sizes)
        evaluator.patch_optimizer_step([self._update_scores], [self._after_step])
        if any(ts.sparse_threshold is not None for ts in targets.values()):
            evaluator.patch_loss(self._loss_patch)

    def _fuse_postprocess(self, evaluator: Any) -> None:
        # Stop the straight-through path; the final masks stay.
        for key, ts in self._metric_targets().items():
            ts.apply_fn = None
        for wrapper in self._wrappers.values():
            if wrapper.is_wrapped:
                wrapper._refresh_params()

    def _loss_patch(self, loss: torch.Tensor, batch: Any) -> torch.Tensor:
        terms = [torch.sigmoid(self._scores[k]).mean() for k, ts in self._metric_targets().items()
                 if ts.sparse_threshold is not None and k in self._scores]
        if not terms:
            return loss
        return loss + self.regular_scale * torch.stack(terms).sum()

    def _update_scores(self) -> None:
        with torch.no_grad():
            for score in self._scores.values():
                if score.grad is not None:
                    score -= score.grad
                    score.grad = None

    def _after_step(self) -> None:
        self._step_count += 1
        if self._step_count <= self.warmup_step:
            return
        schedule = lambda final: movement_ratio(final, self._step_count, self.warmup_step,  # noqa: E731
                                                self.cooldown_begin_step)
        self.update_masks(self._generate_scheduled_masks(schedule, keys=("sparse_ratio",)))

    def _calculate_metrics(self, targets: Dict[Key, PruningTargetSpace],
                           block_sizes: Dict[Key, List[int]]) -> Dict[Key, torch.Tensor]:
        missing = [ts.where for k, ts in targets.items() if k not in self._scores]
        if missing:
            raise RuntimeError(f"MovementPruner: no score was trained for {missing[0]}; call compress()")
        out = {}
        for k, ts in targets.items():
            s = self._scores[k].detach().float()
            out[k] = torch.sigmoid(s) if ts.sparse_threshold is not None else s
        return out

    # ---- compress -----------------------------------------------------------------------
    def _single_compress(self, max_steps: Optional[int], max_epochs: Optional[int]) -> Tuple[torch.nn.Module, Masks]:
        evaluator = self.evaluator
        evaluator.bind_model(self.bound_model)
        try:
            self._step_count = 0
            self._scores.clear()
            self._fuse_preprocess(evaluator)
            if max_steps is None and max_epochs is None:
                max_steps = self.cooldown_begin_step
            evaluator.train(max_steps, max_epochs)
            self._fuse_postprocess(evaluator)
        finally:
            evaluator.unbind_model()
        return self.bound_model, self.get_masks()
