"""The numerical core of TPE: Parzen estimators over one parameter group, in numpy.

A *group* is a set of parameters that are active together: the top-level parameters, or
the parameters of one option of a nested choice.  Within a group the estimator is a mixture
of product kernels (one component per observation plus one prior component), so sampling a
component couples the dimensions ("multivariate" TPE); with ``multivariate=False`` every
dimension is its own mixture (the classic independent TPE).

Encodings (``Dim``), all in an internal coordinate ``z``:

* ``choice``: categorical over option indices (unordered).  Kernel of an observation: its
  option gets weight 1, every option gets ``prior_weight / n_kernels`` (Optuna's rule).
* numeric types: ``z = log(x)`` for the log types, ``x`` otherwise; a normal kernel
  truncated to the domain.  ``randint`` and the ``q`` types are *discrete*: a candidate is
  rounded to a legal value and scored by the probability mass of its bin ``[x - q/2,
  x + q/2]`` (``randint`` uses q = 1, i.e. its integers are *ordered*, which models
  "nearby integers behave alike" and optimizes better than NNI/hyperopt's unordered view).
* ``normal`` types: the prior kernel is the prior N(mu, sigma) itself, kernels are at most
  sigma wide, and the model is truncated to mu +- 5 sigma (in z) so it cannot drift into tails
  the prior gives no mass.

Bandwidths follow Optuna 5: each kernel's sigma is the larger gap to its sorted neighbours
(the outermost kernels use their inner gap), clipped to ``[W / min(100, n_kernels + 1), W]``
where ``W`` is the domain width ("magic clip"); the prior kernel sits mid-domain with
sigma ``W`` (for the normal types: the prior itself, with ``W`` = sigma).  Observation weights ramp linearly up for all but the newest 25
(``linear_forgetting``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from nniray.search_space import Param

_SQRT2PI_LOG = 0.5 * math.log(2 * math.pi)


@dataclass
class Dim:
    """How one parameter is modelled."""

    param: Param
    categorical: bool
    n_choices: int = 0
    lo: float = -math.inf  # model (truncation) domain in z; always finite once built by Dim.of
    hi: float = math.inf
    prior_mu: float = 0.0
    prior_sigma: float = 1.0
    width: float = 1.0  # W of the bandwidth rules
    q: float | None = None  # bin width in value space (randint: 1)
    log: bool = False
    # value-space clip for bins (bounded types)
    vlo: float = -math.inf
    vhi: float = math.inf

    @classmethod
    def of(cls, p: Param) -> "Dim":
        t, v = p.type, p.value
        if t == "choice":
            return cls(p, True, n_choices=len(v))
        log = p.is_log
        if t == "randint":
            lo, hi = float(v[0]) - 0.5, float(v[1]) - 0.5  # integers low .. high-1, equal bins
            return cls(p, False, lo=lo, hi=hi, prior_mu=(lo + hi) / 2, prior_sigma=hi - lo, width=hi - lo,
                       q=1.0, vlo=float(v[0]), vhi=float(v[1]) - 1)
        q = float(v[2]) if t.startswith("q") else None
        if t in ("uniform", "quniform", "loguniform", "qloguniform"):
            a, b = float(v[0]), float(v[1])
            if log:
                lo, hi = math.log(a), math.log(b)
            elif q:
                lo, hi = a - q / 2, b + q / 2  # the end values get full bins, as in Optuna
            else:
                lo, hi = a, b
            return cls(p, False, lo=lo, hi=hi, prior_mu=(lo + hi) / 2, prior_sigma=hi - lo, width=hi - lo,
                       q=q, log=log, vlo=a, vhi=b)
        # normal types: the prior kernel is the prior itself; kernels are at most sigma wide
        # (hyperopt's rule) and the model lives within mu +- 5 sigma, so that TPE cannot drift
        # into tails the prior gives no mass (a value beyond 5 sigma has prior odds < 1e-6).
        mu, sigma = float(v[0]), float(v[1])
        return cls(p, False, lo=mu - 5 * sigma, hi=mu + 5 * sigma, prior_mu=mu, prior_sigma=sigma, width=sigma,
                   q=q, log=log, vlo=0.0 if log else -math.inf)

    def bins(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The z interval of each discrete value's bin ``[x - q/2, x + q/2]``, within the domain."""
        a, b = x - self.q / 2, x + self.q / 2
        if self.log:
            with np.errstate(divide="ignore"):
                za = np.where(a > 0, np.log(np.maximum(a, 1e-300)), -math.inf)
            zb = np.log(np.maximum(b, 1e-300))
        else:
            za, zb = a, b
        return np.maximum(za, self.lo), np.minimum(zb, self.hi)


def default_weights(n: int, flat: int) -> np.ndarray:
    """Optuna/NNI "linear forgetting": the newest ``flat`` weigh 1, older ones ramp from 1/n."""
    if n <= flat:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, n - flat), np.ones(flat)])


class GroupSpec:
    """The dimensions of one group as vectors, so estimators work on all numeric dims at once."""

    def __init__(self, dims: list[Dim]) -> None:
        self.dims = dims
        self.num = np.array([j for j, d in enumerate(dims) if not d.categorical], dtype=int)
        self.cat = [j for j, d in enumerate(dims) if d.categorical]
        nd = [dims[j] for j in self.num]
        # positions (within the numeric block) of continuous and discrete dims
        self.cont = np.array([i for i, d in enumerate(nd) if not d.q], dtype=int)
        self.disc = [i for i, d in enumerate(nd) if d.q]
        f = lambda attr: np.array([getattr(d, attr) for d in nd], dtype=float)
        self.lo, self.hi, self.vlo, self.vhi = f("lo"), f("hi"), f("vlo"), f("vhi")
        self.prior_mu, self.prior_sigma, self.width = f("prior_mu"), f("prior_sigma"), f("width")
        self.log = np.array([d.log for d in nd], dtype=bool)
        self.isq = np.array([bool(d.q) for d in nd], dtype=bool)
        self.q = np.array([d.q or 1.0 for d in nd], dtype=float)
        self.any_log = bool(self.log.any())

    def to_z(self, x: np.ndarray) -> np.ndarray:
        """Numeric values (n x Dn) → z."""
        if not self.any_log:
            return x
        floor = np.where(self.isq, self.q / 4, 1e-300)  # qlognormal can round to 0
        return np.where(self.log, np.log(np.maximum(x, floor)), x)

    def legalize(self, z: np.ndarray) -> np.ndarray:
        """z samples (n x Dn) → legal values, quantized and clipped like the sampling formulas."""
        x = np.where(self.log, np.exp(np.minimum(z, 700.0)), z) if self.any_log else z
        x = np.where(self.isq, np.round(x / self.q) * self.q, x)
        return np.clip(x, self.vlo, self.vhi)


def _sigmas(z: np.ndarray, spec: GroupSpec, n_kernels: int) -> np.ndarray:
    """Optuna 5's neighbour-gap bandwidths with magic clip, for every numeric dim at once."""
    n = z.shape[0]
    # observations can lie outside the model domain (qlognormal's 0, an imported value)
    lo = np.minimum(spec.lo, z.min(axis=0))
    hi = np.maximum(spec.hi, z.max(axis=0))
    order = np.argsort(z, axis=0, kind="stable")
    srt = np.vstack([lo, np.take_along_axis(z, order, axis=0), hi])
    sig_sorted = np.maximum(srt[1:-1] - srt[:-2], srt[2:] - srt[1:-1])
    if n >= 2:  # consider_endpoints=False: the outermost kernels ignore the domain ends
        sig_sorted[0] = srt[2] - srt[1]
        sig_sorted[-1] = srt[-2] - srt[-3]
    sig = np.empty_like(sig_sorted)
    np.put_along_axis(sig, order, sig_sorted, axis=0)
    w = spec.width
    return np.clip(sig, w / min(100.0, 1.0 + n_kernels), w)


class GroupEstimator:
    """A Parzen estimator of one group, built from observed values (n x d: z-encoded numeric
    dims, option index for categorical ones) and observation weights."""

    def __init__(self, spec: GroupSpec, values: np.ndarray, weights: np.ndarray, prior_weight: float) -> None:
        self.spec = spec
        n = values.shape[0]
        self.n_kernels = K = n + 1
        w = np.append(weights, prior_weight)
        self.logw = np.log(np.maximum(w / w.sum(), 1e-300))
        self.cum_p = np.cumsum(w / w.sum())
        # numeric block: K x Dn
        z = values[:, spec.num]
        self.mus = np.vstack([z, spec.prior_mu])
        self.sigmas = np.vstack([_sigmas(z, spec, K), spec.prior_sigma]) if n else spec.prior_sigma[None, :].copy()
        self.logZ = _log_mass(spec.lo, spec.hi, self.mus, self.sigmas)
        self.inv_sig = 1.0 / self.sigmas
        self.off = -np.log(self.sigmas) - _SQRT2PI_LOG - self.logZ
        # categorical dims: K x C log probabilities (Optuna's kernel)
        self.cat_logp: dict[int, np.ndarray] = {}
        for j in spec.cat:
            c = spec.dims[j].n_choices
            k = np.full((K, c), prior_weight / K)
            if n:
                k[np.arange(n), values[:, j].astype(int)] += 1.0
            k /= k.sum(axis=1, keepdims=True)
            self.cat_logp[j] = np.log(np.maximum(k, 1e-300))
        self._disc_prep: dict[int, tuple] = {}

    # -- sampling -------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, size: int, multivariate: bool) -> np.ndarray:
        """``size`` candidates as legal values (size x d; categorical as option index)."""
        spec = self.spec
        d = len(spec.dims)
        out = np.empty((size, d))
        dn = len(spec.num)
        if multivariate:
            comp = self._components(rng, size)
            mu, sig = self.mus[comp], self.sigmas[comp]
        else:
            compm = self._components(rng, (size, dn))
            cols = np.arange(dn)[None, :]
            mu, sig = self.mus[compm, cols], self.sigmas[compm, cols]
        if dn:
            out[:, spec.num] = spec.legalize(_sample_truncnorm(rng, mu, sig, spec.lo, spec.hi))
        for j in spec.cat:
            c = comp if multivariate else self._components(rng, size)
            cum = np.cumsum(np.exp(self.cat_logp[j][c]), axis=1)
            u = rng.random(size)[:, None] * cum[:, -1:]
            out[:, j] = np.minimum((cum < u).sum(axis=1), spec.dims[j].n_choices - 1)
        return out

    def _components(self, rng: np.random.Generator, shape) -> np.ndarray:
        """Mixture components drawn by weight (rng.choice with p=, minus its validation cost)."""
        idx = np.searchsorted(self.cum_p, rng.random(shape) * self.cum_p[-1], side="right")
        return np.minimum(idx, self.n_kernels - 1)

    # -- scoring ------------------------------------------------------------------------------
    def _disc_logp(self, i: int, x: np.ndarray) -> np.ndarray:
        """(size, K) log mass of the bins of candidate values x of numeric dim i (discrete).
        Distinct candidate values are scored once, and with many kernels so are distinct
        (mu, sigma) kernels: on integer or coarse grids most of them repeat."""
        d = self.spec.dims[self.spec.num[i]]
        ux, inv = np.unique(x, return_inverse=True)
        za, zb = d.bins(ux)
        za, zb = za[:, None], zb[:, None]
        if self.n_kernels <= 256:
            table = _log_mass(za, zb, self.mus[None, :, i], self.sigmas[None, :, i]) - self.logZ[None, :, i]
            return table[inv.ravel()]
        if i not in self._disc_prep:
            keys, first, kinv = np.unique(self.mus[:, i] + 1j * self.sigmas[:, i], return_index=True,
                                          return_inverse=True)
            self._disc_prep[i] = (keys.real.copy(), keys.imag.copy(), self.logZ[first, i], kinv.ravel())
        umu, usig, ulogZ, kinv = self._disc_prep[i]
        table = _log_mass(za, zb, umu[None, :], usig[None, :]) - ulogZ[None, :]
        return table[inv.ravel()][:, kinv]

    def _terms(self, x: np.ndarray):
        """Yield (size, K) or (size, K, m) log-kernel blocks whose sum over blocks is the
        product-kernel log density."""
        spec = self.spec
        if len(spec.cont):
            ci = spec.num[spec.cont]
            z = spec.to_z(x[:, spec.num])[:, spec.cont]
            t = (z[:, None, :] - self.mus[None, :, spec.cont]) * self.inv_sig[None, :, spec.cont]
            t *= t
            t *= -0.5
            t += self.off[None, :, spec.cont]
            yield t
        for i in spec.disc:
            yield self._disc_logp(i, x[:, spec.num[i]])[:, :, None]
        for j in spec.cat:
            yield self.cat_logp[j][:, x[:, j].astype(int)].T[:, :, None]

    def log_pdf(self, x: np.ndarray, multivariate: bool) -> np.ndarray:
        """Log density of candidates under the estimator: one mixture of product kernels
        (multivariate), or a product of per-dimension mixtures (independent)."""
        if multivariate:
            acc = np.repeat(self.logw[None, :], x.shape[0], axis=0)
            for block in self._terms(x):
                acc += block.sum(axis=2)
            return _logsumexp(acc)
        total = np.zeros(x.shape[0])
        for block in self._terms(x):
            total += _logsumexp(block + self.logw[None, :, None], axis=1).sum(axis=1)
        return total


def _logsumexp(a: np.ndarray, axis: int = 1) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=axis) + np.log(np.exp(a - m).sum(axis=axis))


def _log_mass(a, b, mu, sig) -> np.ndarray:
    """log P(a < Z < b) for Z ~ N(mu, sig).  In the upper tail the mirror image is used so
    the difference of two CDF values near 1 does not cancel."""
    ta = (a - mu) / sig
    tb = (b - mu) / sig
    flip = ta > 0
    m = ndtr(np.where(flip, -ta, tb)) - ndtr(np.where(flip, -tb, ta))
    return np.log(np.maximum(m, 1e-300))


def _sample_truncnorm(rng: np.random.Generator, mu: np.ndarray, sig: np.ndarray, lo, hi) -> np.ndarray:
    """Inverse-CDF sampling of N(mu, sig) truncated to [lo, hi] (mirrored in the upper tail)."""
    ta = (lo - mu) / sig
    tb = (hi - mu) / sig
    flip = ta > 0
    a = np.where(flip, -tb, ta)
    b = np.where(flip, -ta, tb)
    ca, cb = ndtr(a), ndtr(b)
    u = ca + rng.random(mu.shape) * (cb - ca)
    t = ndtri(np.clip(u, 1e-300, 1 - 1e-16))
    z = mu + sig * np.where(flip, -t, t)
    bad = ~np.isfinite(z) | (cb - ca <= 0)
    if bad.any():  # a kernel far outside the domain: fall back to its prior mean's clip
        z = np.where(bad, np.clip(mu, lo, hi), z)
    return np.clip(z, lo, hi)
