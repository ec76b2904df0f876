"""LotteryTicketPruner: iterative magnitude pruning with rewinding (Frankle & Carbin 2019).

``total_iteration`` rounds.  Round ``t`` (1-based): the evaluator trains the masked model, the
pruner raises every layer's sparsity to ``1 - (1 - P)^(t/n)`` of its original weights (P: the
layer's configured ``sparse_ratio``), i.e. it removes ``1 - (1 - P)^(1/n)`` of the weights that
survived the previous round (NNI's formula; v1 and v2 use it instead of the paper's
``(100P)^(t/n)/100``, which misbehaves numerically), the pruned model is evaluated, and, with
``reset_weight=True``, every parameter and buffer is rewound to its value at the start of
``compress()`` (θ0) and the optimizers are re-created (by re-binding the evaluator), so the next
round trains the ticket from θ0 with fresh optimizer and LR-scheduler state.

Masks only grow: weights pruned in a round stay pruned.  ``get_best_result()`` is the last round
(NNI's "latest" mode for its function-based schedules: the ticket at the requested sparsity), with
that round's ``evaluate()`` score when the evaluator has an ``evaluating_func``; every round's
score and ratios are in ``history``.  ``compress()`` leaves the model with the last masks and θ0
(when rewinding).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from ._advanced.base import AdvancedPruner
from .admm_pruner import _check_duration

__all__ = ["LotteryTicketPruner", "lottery_ticket_schedule", "per_round_ratio"]


def lottery_ticket_schedule(sparse_ratio: float, total_iteration: int) -> List[float]:
    """Cumulative ratios (of the original weights) after rounds 1..n: ``1 - (1 - P)^(t/n)``."""
    return [1 - (1 - sparse_ratio) ** (t / total_iteration) for t in range(1, total_iteration + 1)]


def per_round_ratio(sparse_ratio: float, total_iteration: int) -> float:
    """Share of the surviving weights each round removes: ``1 - (1 - P)^(1/n)``."""
    return 1 - (1 - sparse_ratio) ** (1 / total_iteration)


class LotteryTicketPruner(AdvancedPruner):
    """Lottery-ticket pruning in the NNI 3.0 interface.

    Parameters
    ----------
    model, config_list, evaluator
        The evaluator needs ``training_func``, ``optimizers`` and ``training_step``;
        ``evaluating_func`` scores each round when given (recorded in ``history``).
    total_iteration
        Number of prune rounds ``n``.
    pruning_algorithm
        Base metric: ``'level'`` (default, unstructured magnitude, as in the paper), ``'l1'``,
        ``'l2'`` or ``'fpgm'`` (structured).
    training_steps, training_epochs
        Training per round (exactly one).
    reset_weight
        Rewind to θ0 after each round (default True).  ``reset_weights`` (v1's name) is accepted
        as an alias.
    """

    _required_evaluator_parts = ("training_func", "optimizers", "training_step")

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any, total_iteration: int,
                 pruning_algorithm: str = "level", training_steps: Optional[int] = None,
                 training_epochs: Optional[int] = None, reset_weight: bool = True,
                 reset_weights: Optional[bool] = None, existed_wrappers=None):
        if not isinstance(total_iteration, int) or isinstance(total_iteration, bool) or total_iteration < 1:
            raise ValueError(f"LotteryTicketPruner: total_iteration must be a positive int, got {total_iteration!r}")
        _check_duration("LotteryTicketPruner", training_steps, training_epochs)
        self.total_iteration = total_iteration
        self.training_steps = training_steps
        self.training_epochs = training_epochs
        self.reset_weight = bool(reset_weight if reset_weights is None else reset_weights)
        self.history: List[Dict[str, Any]] = []
        super().__init__(model, config_list, evaluator, pruning_algorithm=pruning_algorithm,
                         existed_wrappers=existed_wrappers)

    def _run(self) -> None:
        theta0 = self.snapshot()
        n = self.total_iteration
        for t in range(1, n + 1):
            self.train(self.training_steps, self.training_epochs)
            masks = self.masks_with_goals(lambda p, t=t: 1 - (1 - p) ** (t / n), keep_pruned=True)
            self.update_masks(masks)
            score = self.evaluate_score()
            if self.reset_weight:
                self.restore(theta0)
                # fresh optimizers / LR schedulers for the next round
                self.evaluator.unbind_model()
                self.evaluator.bind_model(self.bound_model)
            ratios = self.current_ratios()
            self.history.append({"iteration": t, "score": score, "sparse_ratios": ratios})
            self.record(t, score, self.get_masks(), ratios, latest=True)
