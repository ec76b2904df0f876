"""Anneal (NNI's ``Anneal`` tuner): hyperopt's annealing search, reimplemented.

Before any result, suggestions come from the prior.  Afterwards each suggestion:

1. picks a good past trial: sort the observations by loss and take the one at index
   ``geometric(1 / avg_best_idx) - 1`` (so usually the best, sometimes a runner-up);
2. re-draws every parameter near that trial's value, with a width that shrinks with the
   number T of observations of that parameter: ``shrink = 1 / (1 + T * shrink_coef)``.

Per type (z = log value for the log types):

* bounded numeric (uniform, quniform, loguniform, qloguniform, randint): uniform in a window
  of width ``(high - low) * shrink`` around the trial's z, shifted to stay inside the range,
  then quantized/clipped by the type's formula.  ``randint`` is ordered here (window over
  the integers) where hyperopt treats it as categorical: nearby integers are what a
  shrinking search needs.
* normal types: ``normal(z, sigma * shrink)``, then quantized.
* choice: option probabilities ``(1 - shrink) * onehot(trial's option) + shrink * uniform``.
  Parameters of a nested option the trial did not use are centred on the best trial that
  did use them, or drawn from the prior when none did.

``avg_best_idx=2.0`` and ``shrink_coef=0.1`` are hyperopt's defaults.
"""
from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from nniray.search_space import Param

from ._core_base import CoreTuner, check_float, sample_flat


class AnnealTuner(CoreTuner):
    """Simulated-annealing-style local search around good observed points.

    Parameters
    ----------
    optimize_mode : 'minimize' (default: NNI's Anneal is its HyperoptTuner, whose default is
        'minimize') | 'maximize'
    seed : int, optional
    avg_best_idx : float, default 2.0
        Mean rank (1-based) of the trial the next suggestion is centred on.
    shrink_coef : float, default 0.1
        How fast the search width shrinks with the number of observations.
    parallel_optimize, constant_liar_type :
        NNI's Constant Liar, as for TPE (NNI's Anneal shares TPE's classArgs): pending points
        count as observations with the min/max/mean reported value.
    """

    algorithm_name = "Anneal"

    def __init__(self, optimize_mode: str = "minimize", seed: int | None = None,
                 avg_best_idx: float = 2.0, shrink_coef: float = 0.1,
                 parallel_optimize: bool = False, constant_liar_type: str = "min") -> None:
        super().__init__(optimize_mode, seed)
        self._init_liar(parallel_optimize, constant_liar_type)
        self.avg_best_idx = check_float("avg_best_idx", avg_best_idx, 1.0, math.inf)
        self.shrink_coef = check_float("shrink_coef", shrink_coef, 0.0, math.inf)
        self._counts: dict[str, int] = {}  # observations per parameter key (T of the shrink rule)
        self._ranked: list = []

    def _on_space_changed(self) -> None:
        self._counts = {}
        for ob in self.observations:
            self._count(ob.flat)
        # observations by loss; a stable sort keeps arrival order among ties
        self._ranked = sorted(self.observations, key=lambda ob: ob.loss)

    def _count(self, flat: dict) -> None:
        for k in flat:
            self._counts[k] = self._counts.get(k, 0) + 1

    def _observe(self, parameter_id: Any, flat: dict, reward: float) -> None:
        super()._observe(parameter_id, flat, reward)
        self._count(flat)
        # insert after equal losses: the same order as a stable sort of all observations
        bisect.insort_right(self._ranked, self.observations[-1], key=lambda ob: ob.loss)

    def _suggest(self, parameter_id: Any, rng: np.random.Generator) -> dict:
        if not self.observations:
            return sample_flat(self.space, rng)
        lies = self.pending_lies(exclude=parameter_id)  # pending points count with the liar loss
        ranked = sorted(self.observations + lies, key=lambda ob: ob.loss) if lies else self._ranked
        counts = self._counts
        center = self._pick(ranked, rng)
        out: dict = {}
        self._fill(self.space.params, ranked, center, counts, rng, out)
        return out

    def _pick(self, ranked: list, rng: np.random.Generator):
        idx = int(rng.geometric(1.0 / self.avg_best_idx)) - 1
        return ranked[min(idx, len(ranked) - 1)]

    def _fill(self, params, ranked, center, counts, rng: np.random.Generator, out: dict) -> None:
        for p in params:
            ob = center
            if p.key not in ob.flat:  # the centre did not use this branch: use a good trial that did
                users = [o for o in ranked if p.key in o.flat]
                ob = self._pick(users, rng) if users else None
            if ob is None:
                x = p.sample(rng)
            else:
                shrink = 1.0 / (1.0 + counts.get(p.key, 0) * self.shrink_coef)
                x = self._near(p, ob.flat[p.key], shrink, rng)
            out[p.key] = x
            if p.children:
                child = p.children[x]
                if child is not None:
                    self._fill(child.params, ranked, center, counts, rng, out)

    @staticmethod
    def _near(p: Param, val: Any, shrink: float, rng: np.random.Generator) -> Any:
        t, v = p.type, p.value
        if t == "choice":
            n = len(v)
            probs = np.full(n, shrink / n)
            probs[int(val)] += 1.0 - shrink
            return int(rng.choice(n, p=probs / probs.sum()))
        if t in ("normal", "qnormal"):
            return p.quantize(rng.normal(float(val), float(v[1]) * shrink))
        if t in ("lognormal", "qlognormal"):
            z = math.log(max(float(val), (p.q or 0) / 4 or 1e-300))
            return p.quantize(math.exp(rng.normal(z, float(v[1]) * shrink)))
        if t == "randint":
            lo, hi = float(v[0]) - 0.5, float(v[1]) - 0.5
            z = _window(float(val), lo, hi, shrink, rng)
            return int(min(max(round(z), int(v[0])), int(v[1]) - 1))
        log = p.is_log
        lo, hi = (math.log(v[0]), math.log(v[1])) if log else (float(v[0]), float(v[1]))
        z = _window(math.log(val) if log else float(val), lo, hi, shrink, rng)
        return p.quantize(math.exp(z) if log else z)


def _window(mid: float, lo: float, hi: float, shrink: float, rng: np.random.Generator) -> float:
    """Uniform in a window of width (hi - lo) * shrink around mid, kept inside [lo, hi]."""
    half = 0.5 * (hi - lo) * shrink
    mid = min(max(mid, lo + half), hi - half)
    return float(rng.uniform(mid - half, mid + half))
