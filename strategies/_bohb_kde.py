"""BOHB's model: one multivariate kernel density estimator pair (good/bad) per budget.

The configurations live in a unit cube: a continuous dimension holds a value in [0, 1]
(log scale for log types; the normal CDF for the normal types), a categorical dimension holds
the option index.  Kernels are products over dimensions, as in BOHB's reference code
(statsmodels ``KDEMultivariate``, which we do not need): Gaussian for continuous dimensions,
Aitchison-Aitken for categorical ones, bandwidths by the normal reference rule
``1.06 * std * n^(-1/(d+4))`` and never below ``min_bandwidth``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from scipy import special, stats

from nniray.search_space import Param, SearchSpace, SearchSpaceError

# Keeps the normal-type encodings away from the CDF's infinite ends.
_U_EPS = 1e-6


class UnitEncoder:
    """Flat search space ↔ unit-cube vectors.  ``kinds[j]`` is 0 for a continuous dimension and
    the number of options for a categorical one."""

    def __init__(self, space: SearchSpace):
        if space.is_nested:
            nested = next(p.key for p in space.params if p.is_nested_choice)
            raise SearchSpaceError(f"BOHB does not support nested choice (key {nested!r}); "
                                   f"use a flat search space or a ConfigSpace file with conditions (config_space)")
        self.space = space
        self.params: list[Param] = list(space.params)
        self.kinds = np.array([len(p.value) if p.type == "choice" else 0 for p in self.params], dtype=int)

    @property
    def dim(self) -> int:
        return len(self.params)

    def encode(self, assignment: Mapping[str, Any]) -> np.ndarray:
        """``{flat key: internal value}`` (choices as option index) → vector."""
        return np.array([_to_unit(p, assignment[p.key]) for p in self.params], dtype=float)

    def decode(self, vector: np.ndarray) -> dict[str, Any]:
        return {p.key: _from_unit(p, float(u)) for p, u in zip(self.params, vector)}

    def encode_params(self, params: Mapping[str, Any]) -> np.ndarray:
        """A trial's parameter dict → vector."""
        return self.encode(self.space.flatten(params))


def _to_unit(p: Param, x: Any) -> float:
    if p.type == "choice":
        return float(int(x))
    if p.type in ("normal", "qnormal", "lognormal", "qlognormal"):
        mu, sigma = float(p.value[0]), float(p.value[1])
        v = math.log(max(float(x), 1e-300)) if p.is_log else float(x)
        return float(min(max(stats.norm.cdf((v - mu) / sigma), _U_EPS), 1 - _U_EPS))
    return float(p.to_unit(x))


def _from_unit(p: Param, u: float) -> Any:
    if p.type == "choice":
        return int(min(len(p.value) - 1, max(0, round(u))))
    if p.type in ("normal", "qnormal", "lognormal", "qlognormal"):
        mu, sigma = float(p.value[0]), float(p.value[1])
        v = mu + sigma * float(stats.norm.ppf(min(max(u, _U_EPS), 1 - _U_EPS)))
        return p.quantize(math.exp(v) if p.is_log else v)
    return p.from_unit(u)


class MultivariateKDE:
    """Product-kernel density over unit-cube vectors."""

    def __init__(self, data: np.ndarray, kinds: np.ndarray, min_bandwidth: float):
        self.data = np.asarray(data, dtype=float)
        self.kinds = np.asarray(kinds, dtype=int)
        n, d = self.data.shape
        bw = 1.06 * self.data.std(axis=0) * n ** (-1.0 / (d + 4))
        bw = np.maximum(bw, min_bandwidth)
        cat = self.kinds > 0
        # Aitchison-Aitken's lambda lives in [0, (k-1)/k]: at the top every option is equally likely.
        bw[cat] = np.minimum(bw[cat], (self.kinds[cat] - 1) / self.kinds[cat])
        self.bw = bw

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """Log density of each row of ``x`` (m, d)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        diff = x[:, None, :] - self.data[None, :, :]  # (m, n, d)
        logk = np.zeros_like(diff)
        cont = self.kinds == 0
        if cont.any():
            h = self.bw[cont]
            logk[..., cont] = -0.5 * (diff[..., cont] / h) ** 2 - np.log(h * math.sqrt(2 * math.pi))
        cat = self.kinds > 1
        if cat.any():
            lam, k = self.bw[cat], self.kinds[cat]
            same = np.abs(diff[..., cat]) < 0.5
            with np.errstate(divide="ignore"):
                logk[..., cat] = np.where(same, np.log1p(-lam), np.log(lam / (k - 1)))
        # Categorical dimensions with one option contribute log(1) = 0.
        return special.logsumexp(logk.sum(axis=2), axis=1) - math.log(len(self.data))

    def pdf(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self.logpdf(x))

    def sample_widened(self, num: int, bandwidth_factor: float, rng: np.random.Generator) -> np.ndarray:
        """``num`` points around random data points: truncated normals in [0, 1] with the bandwidth
        times ``bandwidth_factor`` for continuous dimensions; categorical ones keep the point's
        option with probability ``1 - lambda``, else take a uniform option."""
        base = self.data[rng.integers(len(self.data), size=num)]
        out = base.copy()
        for j, k in enumerate(self.kinds):
            if k == 0:
                h = self.bw[j] * bandwidth_factor
                m = base[:, j]
                out[:, j] = stats.truncnorm.rvs(-m / h, (1 - m) / h, loc=m, scale=h, random_state=rng)
            else:
                flip = rng.random(num) < self.bw[j]
                out[flip, j] = rng.integers(k, size=int(flip.sum()))
        return out


class KDEConfigGenerator:
    """BOHB's configuration generator: observations per budget, a good/bad KDE pair per budget,
    and sampling that maximizes ``l(x) / g(x)`` (lower loss is better)."""

    def __init__(self, encoder: UnitEncoder, min_points_in_model: int | None, top_n_percent: int,
                 num_samples: int, random_fraction: float, bandwidth_factor: float, min_bandwidth: float,
                 rng: np.random.Generator):
        self.encoder = encoder
        # A KDE over d dimensions needs at least d + 1 points: a smaller min_points_in_model is raised.
        self.min_points = max(encoder.dim + 1, int(min_points_in_model or 0))
        self.top_n_percent = top_n_percent
        self.num_samples = num_samples
        self.random_fraction = random_fraction
        self.bandwidth_factor = bandwidth_factor
        self.min_bandwidth = min_bandwidth
        self.rng = rng
        self.observations: dict[float, list[tuple[np.ndarray, float]]] = {}
        self.models: dict[float, tuple[MultivariateKDE, MultivariateKDE]] = {}

    def new_result(self, vector: np.ndarray, loss: float, budget: float) -> None:
        """Record a finished run (``loss = inf`` for a run without a result) and refit the
        models of its budget once it has ``min_points`` observations.  As in BOHB, a budget
        smaller than the largest one with a model is not refit: that model is never used."""
        obs = self.observations.setdefault(budget, [])
        obs.append((np.asarray(vector, dtype=float), float(loss)))
        if self.encoder.dim == 0 or len(obs) < self.min_points:
            return
        if self.models and max(self.models) > budget:
            return
        self.models[budget] = self._fit(obs)

    def _fit(self, obs: list[tuple[np.ndarray, float]]) -> tuple[MultivariateKDE, MultivariateKDE]:
        data = np.array([v for v, _ in obs])
        losses = np.array([loss for _, loss in obs])
        order = np.argsort(losses, kind="stable")
        n = len(obs)
        # BOHB's split (Falkner et al. 2018): at least min_points in each KDE, so while there are
        # few observations the good and bad sets overlap.
        n_good = max(self.min_points, self.top_n_percent * n // 100)
        n_bad = max(self.min_points, (100 - self.top_n_percent) * n // 100)
        good = data[order[:n_good]]
        bad = data[order[n - n_bad:]]
        kinds = self.encoder.kinds
        return MultivariateKDE(good, kinds, self.min_bandwidth), MultivariateKDE(bad, kinds, self.min_bandwidth)

    def largest_budget_with_model(self) -> float | None:
        return max(self.models) if self.models else None

    def propose(self) -> np.ndarray | None:
        """A model-based vector, or None when the caller should sample from the prior (no model
        yet, or the ``random_fraction`` draw)."""
        if not self.models or self.rng.random() < self.random_fraction:
            return None
        good, bad = self.models[max(self.models)]
        candidates = good.sample_widened(self.num_samples, self.bandwidth_factor, self.rng)
        score = good.logpdf(candidates) - bad.logpdf(candidates)  # log l(x)/g(x)
        return candidates[int(np.argmax(score))]
