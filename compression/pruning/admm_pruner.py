"""ADMMPruner: weight pruning by the Alternating Direction Method of Multipliers.

See :mod:`nniray.compression.pruning._advanced.admm` for the two sub-problems.  Per iteration the
evaluator trains ``training_steps`` steps (or ``training_epochs`` epochs) with the extra gradient
``rho * (W - Z + U)`` on every pruned weight, then Z and U are updated.  The masks are generated
once, after the last iteration, from the last projection (NNI: "Only in the final iteration, the
mask will be generated").

``rho`` is set per config (``{'op_types': ['Conv2d'], 'sparse_ratio': 0.8, 'rho': 1e-3}``),
default ``1e-4`` (v1's ``row``).  ``granularity='fine-grained'`` projects single weights by
magnitude; ``'coarse-grained'`` projects whole output channels by L2 norm.  The projection honours
the config's ``global_group_id``, ``dependency_group_id`` and ``max/min_sparse_ratio`` because
it is computed by the same mask generation as every other pruner.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from ._advanced.admm import ADMMState, normalize_granularity
from ._advanced.base import AdvancedPruner

__all__ = ["ADMMPruner", "DEFAULT_RHO", "admm_iterations", "read_rhos"]

DEFAULT_RHO = 1e-4


def _check_duration(name: str, training_steps: Optional[int], training_epochs: Optional[int]) -> None:
    if (training_steps is None) == (training_epochs is None):
        raise ValueError(f"{name}: give exactly one of training_steps and training_epochs "
                         f"(got training_steps={training_steps!r}, training_epochs={training_epochs!r})")
    value = training_steps if training_steps is not None else training_epochs
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: training_steps/training_epochs must be a positive int, got {value!r}")


def read_rhos(pruner: AdvancedPruner) -> Dict[str, float]:
    """``rho`` of every pruned weight from its config (default ``DEFAULT_RHO``)."""
    rhos = {}
    for name, ts in pruner._weights.items():
        rho = ts.setting.get("rho", DEFAULT_RHO)
        if rho is None:
            rho = DEFAULT_RHO
        if not isinstance(rho, (int, float)) or isinstance(rho, bool) or rho <= 0:
            raise ValueError(f"{ts.where}: rho must be a positive number, got {rho!r}")
        rhos[name] = float(rho)
    return rhos


def admm_iterations(pruner: AdvancedPruner, rhos: Dict[str, float], iterations: int, training_steps: Optional[int],
                    training_epochs: Optional[int], granularity: str,
                    allocation: Optional[Dict[str, float]] = None) -> ADMMState:
    """Run the ADMM iterations on ``pruner``'s (wrapped, evaluator-bound) model and apply the
    final masks.  The projection ranks ``W + U`` with the pruner's base metric; ``allocation``
    overrides the per-layer ratios (AutoCompressPruner passes the annealed allocation), otherwise
    the config's settings (groups, bounds) apply.  Already-pruned blocks stay pruned."""
    weights = {name: ts.original for name, ts in pruner._weights.items()}
    ratios = allocation or pruner._user_ratios
    state = ADMMState(weights, ratios, rhos, granularity)
    pruner.admm_state = state
    masks = None
    state.attach()
    try:
        for _ in range(iterations):
            pruner.train(training_steps, training_epochs)
            source = state.projection_input()
            if allocation is None:
                masks = pruner.masks_with_goals(lambda p: p, keep_pruned=True, metric_source=source)
            else:
                masks = pruner.masks_for(allocation, keep_pruned=True, metric_source=source)
            state.update({name: masks[name]["weight"] for name in weights})
    finally:
        state.detach()
    pruner.update_masks(masks)
    return state


class ADMMPruner(AdvancedPruner):
    """ADMM pruning (Zhang et al. 2018) in the NNI 3.0 interface.

    Parameters
    ----------
    model, config_list, evaluator
        The evaluator needs ``training_func``, ``optimizers`` and ``training_step``.
    iterations
        Number of ADMM iterations (v1 default 30).
    training_epochs, training_steps
        Training length of the first sub-problem per iteration (exactly one of them).
    granularity
        ``'fine-grained'`` (default) or ``'coarse-grained'`` (also ``'fine'`` / ``'coarse'``).
    """

    _extra_config_keys = ("rho",)
    _required_evaluator_parts = ("training_func", "optimizers", "training_step")

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any, iterations: int,
                 training_epochs: Optional[int] = None, training_steps: Optional[int] = None,
                 granularity: str = "fine-grained", existed_wrappers=None):
        if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
            raise ValueError(f"ADMMPruner: iterations must be a positive int, got {iterations!r}")
        _check_duration("ADMMPruner", training_steps, training_epochs)
        self.iterations = iterations
        self.training_steps = training_steps
        self.training_epochs = training_epochs
        self.granularity = normalize_granularity(granularity)
        algo = "level" if self.granularity == "fine-grained" else "l2"
        super().__init__(model, config_list, evaluator, pruning_algorithm=algo, existed_wrappers=existed_wrappers)
        self.rhos = read_rhos(self)
        self.admm_state: Optional[ADMMState] = None

    def run_admm(self, allocation: Optional[Dict[str, float]] = None) -> None:
        admm_iterations(self, self.rhos, self.iterations, self.training_steps, self.training_epochs,
                        self.granularity, allocation)

    def _run(self) -> None:
        self.run_admm()
        self.record(0, None, self.get_masks(), self.current_ratios())
