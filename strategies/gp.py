"""GPTuner: Gaussian-process Bayesian optimisation (NNI's ``GPTuner``, own numpy/scipy model).

classArgs (NNI defaults): ``optimize_mode='maximize'``, ``utility='ei'`` (or 'ucb', 'poi'),
``kappa=5`` (UCB), ``xi=0`` (EI/POI), ``nu=2.5`` (Matern smoothness), ``alpha=1e-6`` (noise
floor), ``cold_start_num=10`` (random points first), ``selection_num_warm_up=100000`` and
``selection_num_starting_points=250`` (acquisition search), plus ``seed``.

How a suggestion is made (see ``_gp_core`` and ``_bo_acq``):

* the search space is mapped to the unit cube (log scale for log types);
* the values to minimise are standardised and power-transformed;
* a Matern-ν ARD GP is fitted by MAP marginal likelihood (one restart besides the prior
  mode while there are at most 60 points);
* running trials are fantasised at the best value seen (constant liar), so parallel
  suggestions spread out instead of landing on the same point;
* the acquisition is maximised over ``min(selection_num_warm_up, 2000)`` pooled candidates
  followed by L-BFGS-B from the best ``min(selection_num_starting_points, 8)`` of them
  (5 from the local, 3 from the uniform part of the pool), with
  integers, choices and q-types rounded before they are scored.

Only numeric, non-nested spaces: choice (numeric options), randint, uniform, quniform,
loguniform, qloguniform.  xi is measured in standardised units of the transformed target.
"""
from __future__ import annotations

import numpy as np

from ._bo_acq import maximize_acquisition
from ._bo_base import UnitCubeTuner, check_float, check_int
from ._gp_core import (SUPPORTED_NU, GaussianProcess, OutputTransform, log_expected_improvement,
                       log_probability_of_improvement, lower_confidence_bound)

GP_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform")
MAX_POOL = 2000
# A random restart of the hyperparameter fit helps with few points; later the prior mode suffices.
RESTART_UNTIL = 60
MAX_STARTS = 8


class GPTuner(UnitCubeTuner):
    """Gaussian-process tuner; see the module docstring."""

    algorithm_name = "GPTuner"
    supported_types = GP_TYPES

    def __init__(self, optimize_mode: str = "maximize", utility: str = "ei", kappa: float = 5,
                 xi: float = 0, nu: float = 2.5, alpha: float = 1e-6, cold_start_num: int = 10,
                 selection_num_warm_up: int = 100000, selection_num_starting_points: int = 250,
                 seed: int | None = None):
        super().__init__(optimize_mode, seed)
        if utility not in ("ei", "ucb", "poi"):
            raise ValueError(f"utility must be 'ei', 'ucb' or 'poi', got {utility!r}")
        self.utility = utility
        self.kappa = check_float("kappa", kappa, 0.0)
        self.xi = check_float("xi", xi, 0.0)
        nu_f = check_float("nu", nu) if nu != float("inf") else float("inf")
        if nu_f not in SUPPORTED_NU:
            raise ValueError(f"nu must be one of 0.5, 1.5, 2.5 or inf (Matern smoothness), got {nu!r}")
        self.nu = nu_f
        self.alpha = check_float("alpha", alpha, 0.0, exclusive=True)
        self.cold_start_num = check_int("cold_start_num", cold_start_num, 0)
        self.selection_num_warm_up = check_int("selection_num_warm_up", selection_num_warm_up, 1)
        self.selection_num_starting_points = check_int("selection_num_starting_points",
                                                       selection_num_starting_points, 1)

    def _suggest(self, rng: np.random.Generator) -> np.ndarray:
        n = len(self._loss)
        if n < max(self.cold_start_num, 2):
            return self._random_point(rng)
        X = self._X
        transform = OutputTransform(self._loss)
        y = transform(self._loss)
        gp = GaussianProcess(self.space.dim, nu=self.nu, alpha=self.alpha)
        gp.fit(X, y, rng, n_restarts=1 if n <= RESTART_UNTIL else 0)
        pending = self.pending_points
        best = float(y.min())
        post = gp.condition(X, y).with_fantasies(pending, best)
        acq = self._acquisition(post, best)
        anchors = X[np.argsort(y)[:5]]
        return maximize_acquisition(
            acq, self.space, rng, anchors=anchors, exclude=np.vstack([X, pending]),
            n_pool=min(self.selection_num_warm_up, MAX_POOL),
            n_starts=min(self.selection_num_starting_points, MAX_STARTS))

    def _acquisition(self, post, best: float):
        if self.utility == "ei":
            return lambda U: log_expected_improvement(*post.predict(U), best, self.xi)
        if self.utility == "poi":
            # log keeps the optimiser's gradients alive where the probability underflows.
            return lambda U: log_probability_of_improvement(*post.predict(U), best, self.xi)
        return lambda U: lower_confidence_bound(*post.predict(U), self.kappa)
