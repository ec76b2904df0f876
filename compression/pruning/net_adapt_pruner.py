"""NetAdaptPruner (Yang et al., ECCV 2018): shrink the model one layer per iteration.

The resource is the number of target weights.  Each iteration must remove ``sparsity_per_iteration``
of the original total (the last one only what is left to reach the config's total, see
SimulatedAnnealingPruner for how the total is read).  For every layer a candidate removes that many
weights from that layer alone (rounded up to whole output channels for ``l1``/``l2``/``fpgm``, to
single weights for ``level``), is optionally fine-tuned for ``finetune_steps`` steps ("short-term
fine-tuning"), and is scored by ``evaluating_func``.  The candidate that loses the least score per
removed weight is kept (with its fine-tuned weights); the others are discarded.  The search ends
when the total is reached, after ``total_iteration`` iterations, or when no layer can give more
(a layer keeps at least one channel and respects ``max_sparse_ratio``).
"""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, List, Optional

import torch

from ._advanced.base import AdvancedPruner

__all__ = ["NetAdaptPruner"]

_logger = logging.getLogger(__name__)


class NetAdaptPruner(AdvancedPruner):
    """NetAdapt in the NNI 3.0 interface.

    Parameters
    ----------
    model, config_list
        The ``sparse_ratio`` values fix the total to remove; ``max_sparse_ratio`` caps a layer.
    evaluator
        Needs ``evaluating_func``; with ``finetune_steps`` also the training parts.
    sparsity_per_iteration
        Share of the original target weights removed per iteration (default 0.05).
    total_iteration
        Optional cap on the number of iterations.
    pruning_algorithm
        ``'l1'`` (default), ``'l2'``, ``'fpgm'`` (channels) or ``'level'`` (single weights).
    finetune_steps
        Short-term fine-tuning of every candidate (v1: ``short_term_fine_tuner``); None: none.
    optimize_mode
        ``'maximize'`` (default) or ``'minimize'`` the score.
    """

    _required_evaluator_parts = ("evaluating_func",)

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 sparsity_per_iteration: float = 0.05, total_iteration: Optional[int] = None,
                 pruning_algorithm: str = "l1", finetune_steps: Optional[int] = None,
                 optimize_mode: str = "maximize", existed_wrappers=None):
        if not isinstance(sparsity_per_iteration, (int, float)) or not 0 < sparsity_per_iteration < 1:
            raise ValueError(f"NetAdaptPruner: sparsity_per_iteration must be in (0, 1), got {sparsity_per_iteration!r}")
        if total_iteration is not None and (not isinstance(total_iteration, int) or total_iteration < 1):
            raise ValueError(f"NetAdaptPruner: total_iteration must be a positive int or None, got {total_iteration!r}")
        if finetune_steps is not None and (not isinstance(finetune_steps, int) or finetune_steps < 1):
            raise ValueError(f"NetAdaptPruner: finetune_steps must be a positive int or None, got {finetune_steps!r}")
        if optimize_mode not in ("maximize", "minimize"):
            raise ValueError(f"NetAdaptPruner: optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        self.sparsity_per_iteration = float(sparsity_per_iteration)
        self.total_iteration = total_iteration
        self.finetune_steps = finetune_steps
        self.optimize_mode = optimize_mode
        self.history: List[Dict[str, Any]] = []
        super().__init__(model, config_list, evaluator, pruning_algorithm=pruning_algorithm,
                         existed_wrappers=existed_wrappers)
        if finetune_steps is not None:
            self._required_evaluator_parts = ("evaluating_func", "training_func", "optimizers", "training_step")
            self._check_evaluator()

    def _block(self, name: str) -> int:
        """Weights per pruning block: one output channel, or one weight for ``level``."""
        shape = self._weights[name].shape
        return 1 if self.pruning_algorithm == "level" else shape.numel() // shape[0]

    def pruned_weights(self) -> Dict[str, int]:
        out = {}
        for name, ts in self._weights.items():
            out[name] = 0 if ts.mask is None else int((ts.mask == 0).sum())
        return out

    def _score(self) -> float:
        score = self.evaluate_score()
        if score is None:
            raise ValueError("NetAdaptPruner needs evaluator.evaluate() to return a score (give an evaluating_func)")
        return score

    def _run(self) -> None:
        numel = self.numels()
        total = sum(numel.values())
        goal = self.overall_target() * total
        step_size = self.sparsity_per_iteration * total
        iteration = 0
        base_score = self._score()
        while self.total_iteration is None or iteration < self.total_iteration:
            pruned = self.pruned_weights()
            need = goal - sum(pruned.values())
            if need <= 1e-9:
                break
            step = min(step_size, need)
            start_masks, start_weights = self.get_masks(), self.snapshot()
            best, candidates = None, 0
            for unit in self.units():
                # one block = one output channel in every member of the unit (one weight for level)
                block = sum(self._block(name) for name in unit)
                n_blocks = numel[unit[0]] // self._block(unit[0])
                k = math.ceil(step / block - 1e-9)
                cap = min(self._user_caps[name] for name in unit)
                max_blocks = math.floor(cap * n_blocks + 1e-9)
                if self.pruning_algorithm != "level":
                    max_blocks = min(max_blocks, n_blocks - 1)   # keep at least one channel
                done_blocks = max(pruned[name] // self._block(name) for name in unit)
                if done_blocks + k > max_blocks:
                    continue
                ratio = (done_blocks + k) / n_blocks
                candidates += 1
                self.update_masks(self.masks_for({name: ratio for name in unit}, keep_pruned=True))
                if self.finetune_steps:
                    self.train(max_steps=self.finetune_steps)
                score = self._score()
                saved = sum(self.pruned_weights().values()) - sum(pruned.values())
                loss = (base_score - score) if self.optimize_mode == "maximize" else (score - base_score)
                cost = loss / max(saved, 1)
                if best is None or cost < best["cost"]:
                    best = {"layer": "+".join(unit), "cost": cost, "score": score, "saved": saved,
                            "masks": self.get_masks(),
                            "weights": self.snapshot() if self.finetune_steps else start_weights}
                self.restore(start_weights)
                self.reset_masks(start_masks)
            if best is None:
                _logger.warning("NetAdaptPruner: no layer can be pruned further; stopping at sparsity %.4f",
                                self.current_sparsity())
                break
            iteration += 1
            self.restore(best["weights"])
            self.update_masks(best["masks"])
            base_score = best["score"]
            self.history.append({"iteration": iteration, "layer": best["layer"], "saved": best["saved"],
                                 "step": step, "candidates": candidates, "score": best["score"], "sparse_ratios": self.current_ratios()})
            self.record(iteration, best["score"], best["masks"], self.current_ratios(), weights=best["weights"],
                        latest=True)
