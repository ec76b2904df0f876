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
    "max_kernels": 1000,
}


@dataclass
class _Group:
    keys: list[str]
    dims: list[Dim]
    spec: GroupSpec = None
    cols: np.ndarray = None  # column of each key in the observation matrix
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
    optimize_mode : 'minimize' (default, as NNI 3.0's ``TpeTuner``) | 'maximize'
    seed : int, optional
    tpe_args : dict, optional (see below)
    parallel_optimize : bool, default False
        Use Constant Liar for pending trials.
    constant_liar_type : 'min' (default) | 'max' | 'mean'

    ``tpe_args``: algorithm knobs (NNI 2.7's name): ``n_startup_jobs`` (10), ``n_ei_candidates`` (48),
        ``gamma`` (0.15: fraction of observations in the good set, at most 25),
        ``linear_forgetting`` (25), ``prior_weight`` (1.0), ``multivariate`` (True),
        ``max_kernels`` (1000: beyond this many observations in the good or bad set, the older
        ones are represented by a weighted random subsample, keeping suggestions fast).
    """

    algorithm_name = "TPE"

    # NNI 3.0's order: TpeTuner(optimize_mode='minimize', seed=None, tpe_args=None); the
    # Constant Liar arguments (NNI 2.x classArgs) follow as keywords.
    def __init__(self, optimize_mode: str = "minimize", seed: int | None = None,
                 tpe_args: Mapping[str, Any] | None = None, parallel_optimize: bool = False,
                 constant_liar_type: str = "min") -> None:
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
        self.max_kernels = check_int("tpe_args.max_kernels", args["max_kernels"], 2)
        self._groups: list[_Group] = []
        self._keys: list[str] = []
        self._n = 0

    # -- state ------------------------------------------------------------------------------
    # Observations live in one growable float matrix (row = trial, column = flat key, NaN where
    # the parameter was inactive), so a suggestion costs no per-observation Python work.
    def _on_space_changed(self) -> None:
        self._groups = _build_groups(self.space)
        self._keys = [p.key for p in self.space.walk()]
        self._key_idx = {k: i for i, k in enumerate(self._keys)}
        for g in self._groups:
            g.cols = np.array([self._key_idx[k] for k in g.keys], dtype=int)
        self._buf = np.empty((max(64, len(self.observations)), len(self._keys)))
        self._loss_buf = np.empty(self._buf.shape[0])
        self._n = 0
        for ob in self.observations:
            self._append(ob.flat, ob.loss)

    def _row(self, flat: dict) -> list:
        return [float(flat[k]) if k in flat else math.nan for k in self._keys]

    def _append(self, flat: dict, loss: float) -> None:
        if self._n == self._buf.shape[0]:
            self._buf = np.concatenate([self._buf, np.empty_like(self._buf)])
            self._loss_buf = np.concatenate([self._loss_buf, np.empty_like(self._loss_buf)])
        self._buf[self._n] = self._row(flat)
        self._loss_buf[self._n] = loss
        self._n += 1

    def _observe(self, parameter_id: Any, flat: dict, reward: float) -> None:
        super()._observe(parameter_id, flat, reward)
        self._append(flat, self.observations[-1].loss)

    def _kernels(self, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Rows and weights of the observations that become kernels.  Beyond ``max_kernels``
        the older, ramp-weighted observations are represented by a random subsample drawn in
        proportion to their weights (an unbiased estimate of their share of the mixture), so a
        suggestion costs the same at 10,000 observations as at 1,000."""
        n = len(idx)
        w = default_weights(n, self.linear_forgetting)
        if n <= self.max_kernels:
            return idx, w
        n_new = min(self.linear_forgetting, self.max_kernels)
        m = self.max_kernels - n_new
        new = idx[n - n_new:]
        if m <= 0:
            return new, np.ones(n_new)
        old, w_old = idx[:n - n_new], w[:n - n_new]
        pick = np.sort(rng.choice(len(old), size=m, p=w_old / w_old.sum()))
        return np.concatenate([old[pick], new]), np.concatenate([np.full(m, w_old.sum() / m), np.ones(n_new)])

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
        values, losses = self._buf[:self._n], self._loss_buf[:self._n]
        pend = self.pending_lies(exclude=parameter_id)
        if pend:
            values = np.vstack([values, [self._row(ob.flat) for ob in pend]])
            losses = np.concatenate([losses, [ob.loss for ob in pend]])
        n = len(losses)
        n_below = min(math.ceil(self.gamma * n), 25)
        order = np.argsort(losses, kind="stable")
        below = np.zeros(n, dtype=bool)
        below[order[:n_below]] = True
        flat: dict = {}
        self._sample_group(0, values, below, rng, flat)
        return flat

    def _sample_group(self, gi: int, all_values: np.ndarray, below: np.ndarray, rng: np.random.Generator,
                      flat: dict) -> None:
        g = self._groups[gi]
        if not g.keys:
            return
        values = all_values[:, g.cols]
        active = ~np.isnan(values[:, 0])
        ests = []
        for mask in (active & below, active & ~below):
            rows, weights = self._kernels(np.flatnonzero(mask), rng)
            v = values[rows]
            if g.spec.any_log:  # z-encode (values are stored as the trial saw them)
                v[:, g.spec.num] = g.spec.to_z(v[:, g.spec.num])
            ests.append(GroupEstimator(g.spec, v, weights, self.prior_weight))
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
                self._sample_group(child, all_values, below, rng, flat)
