"""Shared flow of pruners that look at training before pruning (Slim, Taylor).

``compress(max_steps, max_epochs)`` binds the evaluator, lets the pruner install its collectors,
trains, and generates masks once ``training_steps`` optimizer steps have run.  Training then goes
on with the masks applied until ``max_steps``/``max_epochs`` (if both are None, it stops after
``training_steps`` steps).
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Tuple

import torch

from ..base.compressor import Masks, Pruner

__all__ = ["TrainingPruner"]


class TrainingPruner(Pruner):
    _required_evaluator_parts = ("training_func", "optimizers", "training_step")
    _one_shot = False

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 training_steps: int, existed_wrappers: Any = None):
        if isinstance(training_steps, bool) or not isinstance(training_steps, int) or training_steps < 1:
            raise ValueError(f"{type(self).__name__}: training_steps must be a positive int, got {training_steps!r}")
        self.training_steps = training_steps
        self._step_count = 0
        self._masks_generated = False
        super().__init__(model, config_list, evaluator, existed_wrappers=existed_wrappers)

    def _after_step(self) -> None:
        self._step_count += 1
        if not self._masks_generated and self._step_count >= self.training_steps:
            self._finish_collecting()

    def _finish_collecting(self) -> None:
        """Generate and apply masks from what was collected."""
        self.update_masks(self.generate_masks())
        self._masks_generated = True

    def _single_compress(self, max_steps: Optional[int], max_epochs: Optional[int]) -> Tuple[torch.nn.Module, Masks]:
        evaluator = self.evaluator
        evaluator.bind_model(self.bound_model)
        try:
            self._step_count = 0
            self._masks_generated = False
            self._fuse_preprocess(evaluator)
            evaluator.patch_optimizer_step([], [self._after_step])
            if max_steps is None and max_epochs is None:
                max_steps = self.training_steps
            evaluator.train(max_steps, max_epochs)
            if not self._masks_generated:
                if self._step_count == 0:
                    raise RuntimeError(f"{type(self).__name__}: training ran no optimizer step, so there is nothing to "
                                       f"prune from; check that training_func calls optimizer.step()")
                warnings.warn(f"{type(self).__name__}: training stopped after {self._step_count} of "
                              f"training_steps={self.training_steps} steps; masks were generated from those steps",
                              stacklevel=3)
                self._finish_collecting()
            self._fuse_postprocess(evaluator)
        finally:
            evaluator.unbind_model()
        return self.bound_model, self.get_masks()
