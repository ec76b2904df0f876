"""TPE (Tree-structured Parzen Estimator), NNI's ``TPE`` tuner, implemented in numpy.

How a suggestion is made (after ``n_startup_jobs`` random ones):

1. Sort the observations by loss (the reward, negated when maximizing); the best
   ``min(ceil(gamma * n), 25)`` form the "good" set, the rest the "bad" set.
2. For each parameter group (the top-level parameters, then the sub-space of each chosen
   nested option; a group is modelled only on the trials where it was active) build a
   Parzen estimator l(x) on the good set and g(x) on the bad set (see ``_tpe_core``).
3. Draw ``n_ei_candidates`` candidates from l and keep the one maximizing l(x) / g(x),
   which maximizes expected improvement under TPE's model.

``multivariate`` (default True) couples the parameters of a group through shared mixture
components, as Optuna 5's default TPE does; it helps on correlated objectives.

Parallel trials (``parallel_optimize=True``, NNI's Constant Liar): every suggested point
whose result has not arrived counts as an observation with a fake value L: the min, max or
mean (``constant_liar_type``) of the rewards observed so far, in the units the trial
reports (as NNI does; so with ``optimize_mode='maximize'``, 'min' is the pessimistic lie and
pushes the next suggestions away from pending points; when minimizing, use 'max' for that: a
'min' lie then makes pending points the best observations and TPE clusters around them).
Without Constant Liar, concurrent suggestions still differ, since each draws its randomness
from its own parameter id.  A trial that ends without a result
(``trial_end(success=False)``) stops being pending.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from nniray.search_space import Param, SearchSpace

from ._core_base import CoreTuner, check_float, check_int, sample_flat
from ._tpe_core import Dim, GroupEstimator, GroupSpec, default_weights

logger = logging.getLogger(__name__)

TPE_ARGS_DEFAULTS = {
    "n_startup_jobs": 10,
    "n_ei_candidates": 48,
    "gamma": 0.15,
    "linear_forgetting": 25,
    "prior_weight": 1.0,
    "multivariate": True,
}


@dataclass
class _Group:
    keys: list[str]
    dims: list[Dim]
    spec: GroupSpec = None
    # for each choice dim j: option index -> child group index
    children: dict[int, dict[int, int]] = field(default_factory=dict)


def _build_groups(space: SearchSpace) -> list[_Group]:
    groups: list[_Group] = []

    def add(params: list[Param]) -> int:
        dims = [Dim.of(p) for p in params]
        g = _Group([p.key for p in params], dims, GroupSpec(dims))
        idx = len(groups)
        groups.append(g)
        for j, p in enumerate(params):
            if p.children:
                g.children[j] = {i: add(c.params) for i, c in enumerate(p.children)
                                 if c is not None and c.params}
        return idx

    add(space.params)
    return groups


class TpeTuner(CoreTuner):
    """Tree-structured Parzen Estimator.

    Parameters
    ----------
    optimize_mode : 'maximize' (default) | 'minimize'
    parallel_optimize : bool, default False
        Use Constant Liar for pending trials.
    constant_liar_type : 'min' (default) | 'max' | 'mean'
    seed : int, optional
    tpe_args : dict, optional
        Algorithm knobs (NNI 2.7's name): ``n_startup_jobs`` (10), ``n_ei_candidates`` (48),
        ``gamma`` (0.15: fraction of observations in the good set, at most 25),
        ``linear_forgetting`` (25), ``prior_weight`` (1.0), ``multivariate`` (True).
    """

    algorithm_name = "TPE"

    def __init__(self, optimize_mode: str = "maximize", parallel_optimize: bool = False,
                 constant_liar_type: str = "min", seed: int | None = None,
                 tpe_args: Mapping[str, Any] | None = None) -> None:
        super().__init__(optimize_mode, seed)
        self._init_liar(parallel_optimize, constant_liar_type)
        args = dict(TPE_ARGS_DEFAULTS)
        if tpe_args is not None:
            if not isinstance(tpe_args, Mapping):
                raise ValueError(f"tpe_args must be a dict, got {tpe_args!r}")
            unknown = set(tpe_args) - set(TPE_ARGS_DEFAULTS)
            if unknown:
                raise ValueError(f"tpe_args: unknown key(s) {sorted(unknown)}; valid: {sorted(TPE_ARGS_DEFAULTS)}")
            args.update(tpe_args)
        self.n_startup_jobs = check_int("tpe_args.n_startup_jobs", args["n_startup_jobs"], 0)
        self.n_ei_candidates = check_int("tpe_args.n_ei_candidates", args["n_ei_candidates"], 1)
        self.gamma = check_float("tpe_args.gamma", args["gamma"], 0.0, 1.0, low_open=True)
        self.linear_forgetting = check_int("tpe_args.linear_forgetting", args["linear_forgetting"], 0)
        self.prior_weight = check_float("tpe_args.prior_weight", args["prior_weight"], 0.0, math.inf, low_open=True)
        if not isinstance(args["multivariate"], bool):
            raise ValueError(f"tpe_args.multivariate must be true or false, got {args['multivariate']!r}")
        self.multivariate = args["multivariate"]
        self._groups: list[_Group] = []
        self._cols: dict[str, list] = {}
        self._losses: list[float] = []

    # -- state ------------------------------------------------------------------------------
    def _on_space_changed(self) -> None:
        self._groups = _build_groups(self.space)
        self._cols = {p.key: [] for p in self.space.walk()}
        self._losses = []
        for ob in self.observations:
            self._append(ob.flat, ob.loss)

    def _append(self, flat: dict, loss: float) -> None:
        for key, col in self._cols.items():
            col.append(float(flat[key]) if key in flat else math.nan)
        self._losses.append(loss)

    def _observe(self, parameter_id: Any, flat: dict, reward: float) -> None:
        super()._observe(parameter_id, flat, reward)
        self._append(flat, self.observations[-1].loss)

    # -- suggestion -----------------------------------------------------------------------------
    def _suggest(self, parameter_id: Any, rng: np.random.Generator) -> dict:
        if len(self.observations) < max(self.n_startup_jobs, 1):
            return sample_flat(self.space, rng)
        try:
            return self._suggest_from_model(parameter_id, rng)
        except Exception:  # a numerical corner case must not stop a long experiment
            logger.exception("TPE model failed for parameter id %r; this suggestion is random", parameter_id)
            return sample_flat(self.space, rng)

    def _suggest_from_model(self, parameter_id: Any, rng: np.random.Generator) -> dict:
        cols = {k: np.asarray(v, dtype=float) for k, v in self._cols.items()}
        losses = np.asarray(self._losses, dtype=float)
        pend = self.pending_lies(exclude=parameter_id)
        if pend:
            cols = {k: np.concatenate([c, [float(ob.flat[k]) if k in ob.flat else math.nan for ob in pend]])
                    for k, c in cols.items()}
            losses = np.concatenate([losses, [ob.loss for ob in pend]])
        n = len(losses)
        n_below = min(math.ceil(self.gamma * n), 25)
        order = np.argsort(losses, kind="stable")
        below = np.zeros(n, dtype=bool)
        below[order[:n_below]] = True
        flat: dict = {}
        self._sample_group(0, cols, below, rng, flat)
        return flat

    def _sample_group(self, gi: int, cols: dict, below: np.ndarray, rng: np.random.Generator, flat: dict) -> None:
        g = self._groups[gi]
        if not g.keys:
            return
        values = np.stack([cols[k] for k in g.keys], axis=1)
        active = ~np.isnan(values[:, 0])
        ests = []
        for mask in (active & below, active & ~below):
            v = values[mask]
            if g.spec.any_log:  # z-encode (values are stored as the trial saw them)
                v[:, g.spec.num] = g.spec.to_z(v[:, g.spec.num])
            ests.append(GroupEstimator(g.spec, v, default_weights(len(v), self.linear_forgetting), self.prior_weight))
        l_est, g_est = ests
        cand = l_est.sample(rng, self.n_ei_candidates, self.multivariate)
        score = l_est.log_pdf(cand, self.multivariate) - g_est.log_pdf(cand, self.multivariate)
        best = cand[int(np.argmax(score))]
        for j, (key, d) in enumerate(zip(g.keys, g.dims)):
            x = best[j]
            flat[key] = int(x) if d.categorical or d.param.type == "randint" else float(x)
        for j, opts in g.children.items():
            child = opts.get(flat[g.keys[j]])
            if child is not None:
                self._sample_group(child, cols, below, rng, flat)
