"""Scheduled pruners: LinearPruner and AGPPruner (NNI 3.0).

``LinearPruner(pruner, interval_steps, total_times, evaluator=None)`` (and ``AGPPruner``, same
arguments) drive another pruner during one training run: after optimizer steps
``1, 1 + interval_steps, ..., 1 + (total_times - 1) * interval_steps`` the wrapped pruner
regenerates its masks with every scheduled goal (``sparse_ratio``, ``sparse_threshold``,
``max_sparse_ratio``, ``min_sparse_ratio``) set to the schedule value at time ``t = 1..T``
(``T = total_times``), so the final goal is reached at the ``T``-th update:

* Linear: ``current = (initial + (1 - initial) * t / T) * final``
* AGP:    ``current = (1 - (1 - initial) * (1 - t / T) ** 3) * final``

``initial`` is 0 (NNI 3.0 exposes no argument for it), so Linear is ``t / T * final`` (final 0.5
over 5 times: 0.1, 0.2, 0.3, 0.4, 0.5) and AGP is Zhu & Gupta's cubic ``final * (1 - (1 - t/T)^3)``.
Metrics are computed on the masked weights, so pruned weights stay pruned as the goal rises.

The wrapped pruner may be Level/L1Norm/L2Norm/FPGM (metrics from weights) or Taylor (importance
collected between updates).  Scheduled pruners cannot be built with ``from_compressor``.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple

import torch

from ..base.compressor import Masks, Pruner

__all__ = ["LinearPruner", "AGPPruner", "linear_ratio", "agp_ratio"]


def linear_ratio(final: float, t: int, total: int, initial: float = 0.0) -> float:
    """Linear schedule value at update ``t`` of ``total``."""
    return (initial + (1.0 - initial) * t / total) * final


def agp_ratio(final: float, t: int, total: int, initial: float = 0.0) -> float:
    """AGP (cubic) schedule value at update ``t`` of ``total``."""
    return (1.0 - (1.0 - initial) * (1.0 - t / total) ** 3) * final


class _ScheduledPruner(Pruner):
    _required_evaluator_parts = ("training_func", "optimizers", "training_step")
    _one_shot = False

    def __init__(self, pruner: Pruner, interval_steps: int, total_times: int, evaluator: Any = None):
        name = type(self).__name__
        if not isinstance(pruner, Pruner) or isinstance(pruner, _ScheduledPruner):
            raise TypeError(f"{name}: pruner must be a pruner instance such as L1NormPruner(model, config_list), "
                            f"got {type(pruner).__name__}")
        if not getattr(pruner, "_supports_schedule", pruner._one_shot):
            raise TypeError(f"{name} cannot schedule {type(pruner).__name__}; use LevelPruner, L1NormPruner, "
                            f"L2NormPruner, FPGMPruner or TaylorPruner")
        for arg, v in (("interval_steps", interval_steps), ("total_times", total_times)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        if evaluator is not None and pruner.evaluator is not None and evaluator is not pruner.evaluator:
            warnings.warn(f"{name}: both the pruner and {name} got an evaluator; the one given to {name} is used",
                          stacklevel=2)
        self.pruner = pruner
        self.interval_steps = interval_steps
        self.total_times = total_times
        # Share the wrapped pruner's model, config and targets (no second wrapping).
        self.bound_model = pruner.bound_model
        self.config_list = pruner.config_list
        self.evaluator = evaluator if evaluator is not None else pruner.evaluator
        self._check_evaluator()
        self._wrappers = pruner._wrappers
        self._target_spaces = pruner._target_spaces
        self._is_wrapped = pruner._is_wrapped
        self._default_granularity = pruner._default_granularity
        self._step_count = 0
        self._times = 0

    @classmethod
    def from_compressor(cls, *args: Any, **kwargs: Any):  # type: ignore[override]
        raise TypeError(f"{cls.__name__} cannot be created with from_compressor; build the inner pruner with "
                        f"from_compressor and wrap it: {cls.__name__}(pruner, interval_steps, total_times)")

    def wrap_model(self) -> None:
        self.pruner.wrap_model()
        self._is_wrapped = True

    def unwrap_model(self) -> None:
        self.pruner.unwrap_model()
        self._is_wrapped = False

    def schedule(self, final: float, t: int) -> float:
        raise NotImplementedError

    def generate_masks(self) -> Masks:
        return self.pruner.generate_masks()

    def _calculate_metrics(self, targets, block_sizes):  # pragma: no cover - delegated
        return self.pruner._calculate_metrics(targets, block_sizes)

    def _update(self) -> None:
        self._times += 1
        t = self._times
        masks = self.pruner._generate_scheduled_masks(lambda final: self.schedule(final, t))
        self.pruner.update_masks(masks)

    def _after_step(self) -> None:
        self._step_count += 1
        if self._times < self.total_times and (self._step_count - 1) % self.interval_steps == 0:
            self._update()

    def compress(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None) -> Tuple[torch.nn.Module, Masks]:
        """Train (``max_steps``/``max_epochs``; both None: just enough steps for all updates) while
        the goal rises; returns ``(model, masks)``."""
        if not self.pruner._is_wrapped:
            self.pruner.wrap_model()
        evaluator = self.evaluator
        evaluator.bind_model(self.bound_model)
        try:
            self._step_count = 0
            self._times = 0
            self.pruner._fuse_preprocess(evaluator)
            evaluator.patch_optimizer_step([], [self._after_step])
            if max_steps is None and max_epochs is None:
                max_steps = 1 + (self.total_times - 1) * self.interval_steps
            evaluator.train(max_steps, max_epochs)
            if self._times < self.total_times:
                warnings.warn(f"{type(self).__name__}: training stopped after {self._times} of total_times="
                              f"{self.total_times} updates; the final goal was applied at the end", stacklevel=2)
                if self._step_count == 0:
                    raise RuntimeError(f"{type(self).__name__}: training ran no optimizer step; check that "
                                       f"training_func calls optimizer.step() and honours max_steps/max_epochs")
                self._times = self.total_times - 1
                self._update()
            self.pruner._fuse_postprocess(evaluator)
        finally:
            evaluator.unbind_model()
        return self.bound_model, self.get_masks()


class LinearPruner(_ScheduledPruner):
    """Raise the goal linearly: ``t / T * final`` at update ``t`` of ``T = total_times``."""

    def schedule(self, final: float, t: int) -> float:
        return linear_ratio(final, t, self.total_times)


class AGPPruner(_ScheduledPruner):
    """Automated Gradual Pruning: ``final * (1 - (1 - t/T)^3)`` at update ``t`` of ``T``."""

    def schedule(self, final: float, t: int) -> float:
        return agp_ratio(final, t, self.total_times)
