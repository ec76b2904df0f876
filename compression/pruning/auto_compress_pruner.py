"""AutoCompressPruner (Liu et al., AAAI 2020): simulated annealing + ADMM, round by round.

``total_iteration`` rounds.  Round ``t`` raises the total sparsity to ``1 - (1 - P)^(t/n)`` (the
lottery-ticket schedule NNI uses for AutoCompress; P: the config's total, as in
SimulatedAnnealingPruner):

1. simulated annealing finds how to spread that total over the layers (``sa_params``), adding
   only to what earlier rounds pruned;
2. ADMM trains towards that allocation and prunes (``admm_params``), masks growing monotonically;
3. the model is evaluated.

Differences from NNI (see docs/decisions/compression-advanced.md): no speedup between rounds (the
masked model carries over; call ``ModelSpeedup`` on the result), and the ADMM projection ranks
``W + U`` with the annealing's base metric (``l1`` by default: whole output channels), so both
phases agree on what a "pruned channel" is.  ``get_best_result()`` is the last round (NNI's
"latest" mode for this pruner), i.e. the model at the requested sparsity.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ._advanced.annealing import AnnealingSchedule
from ._advanced.base import AdvancedPruner
from .admm_pruner import _check_duration, admm_iterations, read_rhos
from .simulated_annealing_pruner import anneal

__all__ = ["AutoCompressPruner"]

_SA_KEYS = ("start_temperature", "stop_temperature", "cool_down_rate", "perturbation_magnitude", "pruning_algorithm",
            "optimize_mode", "training_steps")
_ADMM_KEYS = ("iterations", "training_steps", "training_epochs")


def _check_keys(name: str, params: Dict[str, Any], known) -> None:
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"AutoCompressPruner: {name} has unknown keys {unknown}; known keys are {list(known)}")


class AutoCompressPruner(AdvancedPruner):
    """AutoCompress in the NNI 3.0 interface.

    Parameters
    ----------
    model, config_list
        As SimulatedAnnealingPruner (the ``sparse_ratio`` values fix the total); ``rho`` per config
        as ADMMPruner.
    evaluator
        Needs ``training_func``, ``optimizers``, ``training_step`` (ADMM) and ``evaluating_func``
        (annealing scores).
    total_iteration
        Number of rounds.
    admm_params
        ``iterations`` (default 30) and exactly one of ``training_steps`` / ``training_epochs``
        (default ``training_epochs=5``), v1's ADMM defaults.
    sa_params
        ``start_temperature`` (100), ``stop_temperature`` (20), ``cool_down_rate`` (0.9),
        ``perturbation_magnitude`` (0.35), ``pruning_algorithm`` ('l1'), ``optimize_mode``
        ('maximize'), ``training_steps`` (None: candidates are scored without fine-tuning).
    seed
        Seed of the annealing's random numbers.
    """

    _extra_config_keys = ("rho",)
    _required_evaluator_parts = ("training_func", "optimizers", "training_step", "evaluating_func")

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any, total_iteration: int,
                 admm_params: Optional[Dict[str, Any]] = None, sa_params: Optional[Dict[str, Any]] = None,
                 seed: Optional[int] = None, existed_wrappers=None):
        if not isinstance(total_iteration, int) or isinstance(total_iteration, bool) or total_iteration < 1:
            raise ValueError(f"AutoCompressPruner: total_iteration must be a positive int, got {total_iteration!r}")
        admm = dict(admm_params or {})
        sa = dict(sa_params or {})
        _check_keys("admm_params", admm, _ADMM_KEYS)
        _check_keys("sa_params", sa, _SA_KEYS)
        if "training_steps" not in admm and "training_epochs" not in admm:
            admm["training_epochs"] = 5
        admm.setdefault("iterations", 30)
        _check_duration("AutoCompressPruner admm_params", admm.get("training_steps"), admm.get("training_epochs"))
        if not isinstance(admm["iterations"], int) or admm["iterations"] < 1:
            raise ValueError(f"AutoCompressPruner: admm_params.iterations must be a positive int, got {admm['iterations']!r}")
        self.total_iteration = total_iteration
        self.admm_params = admm
        self.sa_training_steps = sa.pop("training_steps", None)
        pruning_algorithm = sa.pop("pruning_algorithm", "l1")
        self.schedule_args = {"start_temperature": 100, "stop_temperature": 20, "cool_down_rate": 0.9,
                              "perturbation_magnitude": 0.35, "optimize_mode": "maximize", **sa}
        AnnealingSchedule(**self.schedule_args)  # validate now
        self.rng = np.random.default_rng(seed)
        self.history: List[Dict[str, Any]] = []
        self.admm_state = None
        super().__init__(model, config_list, evaluator, pruning_algorithm=pruning_algorithm,
                         existed_wrappers=existed_wrappers)
        self.rhos = read_rhos(self)
        self.granularity = "fine-grained" if pruning_algorithm == "level" else "coarse-grained"

    def _run(self) -> None:
        total = self.overall_target()
        n = self.total_iteration
        for t in range(1, n + 1):
            target = 1 - (1 - total) ** (t / n)
            allocation = anneal(self, target, AnnealingSchedule(**self.schedule_args), self.rng,
                                self.sa_training_steps, self.history, task_prefix=f"{t}-")
            admm_iterations(self, self.rhos, self.admm_params["iterations"], self.admm_params.get("training_steps"),
                            self.admm_params.get("training_epochs"), self.granularity, allocation)
            score = self.evaluate_score()
            self.history.append({"task_id": f"round-{t}", "target": target, "score": score,
                                 "sparse_ratios": self.current_ratios()})
            self.record(t, score, self.get_masks(), self.current_ratios(), latest=True)
