"""SimulatedAnnealingPruner: search the per-layer sparsity distribution by simulated annealing.

The config_list fixes how much to prune *in total*: the share ``sum(n_i r_i) / sum(n_i)`` of the
targets' weights that its per-layer ``sparse_ratio`` values ``r_i`` would remove (with one ratio
for every layer, that is the ratio itself).  The search redistributes it over the layers (see
:mod:`nniray.compression.pruning._advanced.annealing` for the allocation rules and the
temperature schedule); each candidate is masked with the base ``pruning_algorithm`` and scored
by the evaluator's ``evaluating_func`` (optionally after ``training_steps`` steps of fine-tuning,
whose weights are discarded after scoring).  ``compress()`` applies the best allocation found.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ._advanced.annealing import AnnealingSchedule, perturb_allocation, random_allocation
from ._advanced.base import AdvancedPruner

__all__ = ["SimulatedAnnealingPruner", "anneal"]


def anneal(pruner: AdvancedPruner, target: float, schedule: AnnealingSchedule, rng: np.random.Generator,
           training_steps: Optional[int] = None, history: Optional[List[Dict[str, Any]]] = None,
           task_prefix: str = "") -> Dict[str, float]:
    """Run the annealing search on ``pruner``'s model; returns the best allocation (per-layer
    ratios of the original weights), leaving the model's weights and masks as they were.

    Layers already pruned keep their pruned weights: the search distributes the *additional*
    pruning over the remaining weights, so every candidate prunes ``target`` of the original total.
    """
    names = list(pruner._weights)
    numel = pruner.numels()
    current_ratio = pruner.current_ratios()
    remaining = np.array([numel[k] * (1 - current_ratio[k]) for k in names])
    already = sum(numel[k] * current_ratio[k] for k in names)
    total = sum(numel.values())
    if target * total < already - 1e-9:
        raise ValueError(f"the model is already pruned to {already / total:.4f} of the targets' weights, more than "
                         f"the requested total {target:.4f}")
    relative = (target * total - already) / remaining.sum() if remaining.sum() > 0 else 0.0
    caps = np.array([(pruner._user_caps[k] - current_ratio[k]) / max(1e-12, 1 - current_ratio[k]) for k in names])

    def to_real(alloc: np.ndarray) -> Dict[str, float]:
        return {k: current_ratio[k] + float(a) * (1 - current_ratio[k]) for k, a in zip(names, alloc)}

    start_masks = pruner.get_masks()
    start_weights = pruner.snapshot()

    def evaluate(alloc: np.ndarray) -> float:
        pruner.update_masks(pruner.masks_for(to_real(alloc), keep_pruned=True))
        if training_steps:
            pruner.train(max_steps=training_steps)
        score = pruner.evaluate_score()
        if training_steps:
            pruner.restore(start_weights)
        if score is None:
            raise ValueError(f"{type(pruner).__name__} needs a score: evaluator.evaluate() returned None "
                             f"(give the evaluator an evaluating_func)")
        return score

    best_alloc, best_score = None, None
    current = random_allocation(remaining, relative, rng, caps)
    current_score = evaluate(current)
    step = 0
    maximize = schedule.optimize_mode == "maximize"

    def note(alloc, score, accepted, temperature):
        nonlocal best_alloc, best_score
        if best_score is None or (score > best_score if maximize else score < best_score):
            best_alloc, best_score = alloc, score
        if history is not None:
            history.append({"task_id": f"{task_prefix}{step}", "temperature": temperature, "score": score,
                            "accepted": accepted, "sparse_ratios": to_real(alloc)})

    note(current, current_score, True, schedule.temperature)
    while not schedule.finished:
        step += 1
        temperature = schedule.temperature
        candidate = perturb_allocation(current, remaining, relative, schedule.magnitude, rng, caps)
        score = evaluate(candidate)
        accepted = schedule.accept(score, current_score, rng)
        if accepted:
            current, current_score = candidate, score
        note(candidate, score, accepted, temperature)

    pruner.reset_masks(start_masks)
    return to_real(best_alloc)


class SimulatedAnnealingPruner(AdvancedPruner):
    """Simulated-annealing search of the layer sparsity distribution (NNI 3.0 interface).

    Parameters
    ----------
    model, config_list
        The config's ``sparse_ratio`` values fix the total (see the module docstring);
        ``max_sparse_ratio`` caps a layer.
    evaluator
        Needs ``evaluating_func`` (the score, higher is better unless ``optimize_mode='minimize'``);
        with ``training_steps`` also the training parts.
    start_temperature, stop_temperature, cool_down_rate, perturbation_magnitude
        The schedule: 100, 20, 0.9, 0.35 as NNI.
    pruning_algorithm
        Base metric for the masks of a candidate: ``'level'``, ``'l1'`` (default), ``'l2'``, ``'fpgm'``.
    training_steps
        Optional short fine-tuning of each candidate before scoring.
    seed
        Seed of the search's random numbers.
    """

    _required_evaluator_parts = ("evaluating_func",)

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any,
                 start_temperature: float = 100, stop_temperature: float = 20, cool_down_rate: float = 0.9,
                 perturbation_magnitude: float = 0.35, pruning_algorithm: str = "l1", optimize_mode: str = "maximize",
                 training_steps: Optional[int] = None, seed: Optional[int] = None, existed_wrappers=None):
        self.schedule_args = dict(start_temperature=start_temperature, stop_temperature=stop_temperature,
                                  cool_down_rate=cool_down_rate, perturbation_magnitude=perturbation_magnitude,
                                  optimize_mode=optimize_mode)
        AnnealingSchedule(**self.schedule_args)  # validate now, not at compress()
        if training_steps is not None and (not isinstance(training_steps, int) or training_steps < 1):
            raise ValueError(f"SimulatedAnnealingPruner: training_steps must be a positive int or None, "
                             f"got {training_steps!r}")
        self.training_steps = training_steps
        self.optimize_mode = optimize_mode
        self.rng = np.random.default_rng(seed)
        self.history: List[Dict[str, Any]] = []
        super().__init__(model, config_list, evaluator, pruning_algorithm=pruning_algorithm,
                         existed_wrappers=existed_wrappers)
        if training_steps is not None:
            self._required_evaluator_parts = ("evaluating_func", "training_func", "optimizers", "training_step")
            self._check_evaluator()

    def _run(self) -> None:
        schedule = AnnealingSchedule(**self.schedule_args)
        best = anneal(self, self.overall_target(), schedule, self.rng, self.training_steps, self.history)
        self.update_masks(self.masks_for(best, keep_pruned=True))
        score = self.evaluate_score()
        self.record(len(self.history), score, self.get_masks(), self.current_ratios(),
                    maximize=self.optimize_mode == "maximize")
