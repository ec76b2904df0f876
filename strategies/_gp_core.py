"""A small, fast Gaussian process on the unit cube (numpy/scipy only), for GP and Metis.

* Kernel: Matern-ν (ν ∈ {0.5, 1.5, 2.5, inf}) with one length scale per dimension (ARD),
  a signal variance and a noise variance (at least ``alpha``).
* Hyperparameters: maximum a posteriori with analytic gradients and L-BFGS-B.  The length
  scale prior is LogNormal(0, 1) on the unit cube, which keeps the fit sane with few points.
* Targets: the tuner hands in values to *minimise*; :class:`OutputTransform` standardises
  them and applies a Yeo-Johnson power transform, so heavy-tailed objectives (Rosenbrock,
  losses that blow up) do not flatten the model near the optimum.

Everything is batched over candidates: one acquisition call costs one ``(m, n)`` kernel
matrix and one triangular solve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize, special, stats

SUPPORTED_NU = (0.5, 1.5, 2.5, math.inf)
_SQ3, _SQ5 = math.sqrt(3.0), math.sqrt(5.0)
_LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------------------
# Kernel
# ---------------------------------------------------------------------------------------

def _sq_dist(A: np.ndarray, B: np.ndarray, ls: np.ndarray) -> np.ndarray:
    a, b = A / ls, B / ls
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


def matern(r: np.ndarray, nu: float) -> np.ndarray:
    """Matern correlation as a function of the scaled distance ``r``."""
    if nu == 0.5:
        return np.exp(-r)
    if nu == 1.5:
        return (1.0 + _SQ3 * r) * np.exp(-_SQ3 * r)
    if nu == 2.5:
        return (1.0 + _SQ5 * r + 5.0 / 3.0 * r * r) * np.exp(-_SQ5 * r)
    return np.exp(-0.5 * r * r)


def _matern_g(r: np.ndarray, nu: float) -> np.ndarray:
    """``-k'(r) / r``: d k / d log ℓ_j = g(r) · Δ_j² / ℓ_j²."""
    if nu == 0.5:
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.exp(-r) / r
        return np.where(r > 0, g, 0.0)
    if nu == 1.5:
        return 3.0 * np.exp(-_SQ3 * r)
    if nu == 2.5:
        return 5.0 / 3.0 * (1.0 + _SQ5 * r) * np.exp(-_SQ5 * r)
    return np.exp(-0.5 * r * r)


# ---------------------------------------------------------------------------------------
# Output transform
# ---------------------------------------------------------------------------------------

class OutputTransform:
    """Standardise, Yeo-Johnson (λ by maximum likelihood), standardise again.

    Monotone increasing, so the best observed point stays the best."""

    def __init__(self, y: np.ndarray, power: bool = True):
        y = np.asarray(y, dtype=float)
        self.mu0, self.sd0 = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.mu0) / self.sd0
        self.lmbda = None
        if power and len(y) >= 4 and np.ptp(z) > 0:
            try:
                with np.errstate(all="ignore"):
                    lm = float(stats.yeojohnson_normmax(z))
                if math.isfinite(lm):
                    self.lmbda = float(np.clip(lm, -2.0, 2.0))
            except (ValueError, FloatingPointError, RuntimeError):
                self.lmbda = None
        w = self._power(z)
        self.mu1, self.sd1 = float(w.mean()), float(w.std()) or 1.0

    def _power(self, z: np.ndarray) -> np.ndarray:
        return z if self.lmbda is None else stats.yeojohnson(z, lmbda=self.lmbda)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        z = (np.asarray(y, dtype=float) - self.mu0) / self.sd0
        return (self._power(z) - self.mu1) / self.sd1


# ---------------------------------------------------------------------------------------
# GP regression
# ---------------------------------------------------------------------------------------

@dataclass
class GPParams:
    log_ls: np.ndarray
    log_signal: float
    log_noise: float

    def vector(self) -> np.ndarray:
        return np.concatenate([self.log_ls, [self.log_signal, self.log_noise]])

    @classmethod
    def from_vector(cls, v: np.ndarray) -> "GPParams":
        return cls(np.array(v[:-2]), float(v[-2]), float(v[-1]))


class GaussianProcess:
    """Zero-mean GP on standardised targets, with MAP hyperparameters.

    ``fit`` chooses the hyperparameters; ``condition`` builds the posterior for given data
    and hyperparameters (used again for constant-liar fantasies of pending points)."""

    def __init__(self, dim: int, nu: float = 2.5, alpha: float = 1e-6):
        if nu not in SUPPORTED_NU:
            raise ValueError(f"nu must be one of 0.5, 1.5, 2.5 or inf (Matern smoothness), got {nu!r}")
        self.dim, self.nu = dim, float(nu)
        self.min_noise = max(float(alpha), 1e-9)
        # Prior and bounds in log space.
        # LogNormal(0, 1) on length scales (unit cube): the dimension-scaled prior of Hvarfner et
        # al. (median 10 in 6-D) let flat early data fit near-constant models that then stalled
        # for 40 trials on Hartmann-6 (docs/decisions/tuners-bo.md).
        self.ls_prior_mu = 0.0
        self.ls_prior_sd = 1.0
        self.bounds = ([(math.log(1e-2), math.log(1e3))] * dim
                       + [(math.log(5e-2), math.log(20.0)), (math.log(self.min_noise), math.log(1.0))])
        self.params: GPParams | None = None

    # -- marginal likelihood -------------------------------------------------------------
    def _neg_log_posterior(self, v: np.ndarray, X: np.ndarray, y: np.ndarray, D2: np.ndarray):
        """-(log marginal likelihood + log prior) and its gradient."""
        p = GPParams.from_vector(v)
        ls = np.exp(p.log_ls)
        s2, noise = math.exp(p.log_signal), math.exp(p.log_noise)
        n = len(y)
        inv_ls2 = 1.0 / (ls * ls)
        r = np.sqrt(np.maximum(D2 @ inv_ls2, 0.0)).reshape(n, n)  # D2: (n*n, d) squared differences
        M = matern(r, self.nu)
        K = s2 * M
        K[np.diag_indices(n)] += noise
        try:
            L = linalg.cholesky(K, lower=True, check_finite=False)
        except linalg.LinAlgError:
            return 1e10, np.zeros_like(v)
        a = linalg.cho_solve((L, True), y, check_finite=False)
        nll = 0.5 * y @ a + np.log(np.diag(L)).sum() + 0.5 * n * _LOG_2PI
        Kinv = linalg.cho_solve((L, True), np.eye(n), check_finite=False)
        W = np.outer(a, a) - Kinv  # d nll / dθ = -½ tr(W dK/dθ)
        g = s2 * _matern_g(r, self.nu)
        grad = np.empty_like(v)
        grad[:-2] = -0.5 * ((W * g).ravel() @ D2) * inv_ls2
        grad[-2] = -0.5 * np.sum(W * K) + 0.5 * noise * np.trace(W)  # W·(K - noise I)
        grad[-1] = -0.5 * noise * np.trace(W)
        # Priors: LogNormal on length scales; weak ones keep signal ~1 and noise small.
        dl = p.log_ls - self.ls_prior_mu
        nll += 0.5 * np.sum(dl * dl) / self.ls_prior_sd ** 2
        grad[:-2] += dl / self.ls_prior_sd ** 2
        nll += 0.5 * p.log_signal ** 2 / 1.0
        grad[-2] += p.log_signal
        dn = p.log_noise - math.log(1e-4)
        nll += 0.5 * dn * dn / 9.0
        grad[-1] += dn / 9.0
        return float(nll), grad

    def fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_restarts: int = 1,
            max_fit_points: int = 300) -> GPParams:
        """MAP hyperparameters from the prior mode plus ``n_restarts`` random starts.

        Above ``max_fit_points`` points the hyperparameters are fitted on a subset (the best
        third plus a random rest), which keeps the O(n³) fit bounded; the posterior still uses
        every point."""
        X, y = np.asarray(X, float), np.asarray(y, float)
        if len(y) > max_fit_points:
            order = np.argsort(y)
            k = max_fit_points // 3
            rest = rng.choice(order[k:], size=max_fit_points - k, replace=False)
            idx = np.concatenate([order[:k], rest])
            X, y = X[idx], y[idx]
        D2 = ((X[:, None, :] - X[None, :, :]) ** 2).reshape(-1, self.dim)
        starts = [np.concatenate([np.full(self.dim, self.ls_prior_mu), [0.0, math.log(1e-4)]])]
        lo = np.array([b[0] for b in self.bounds])
        hi = np.array([b[1] for b in self.bounds])
        for _ in range(n_restarts):
            v = starts[0] + rng.normal(0.0, 1.0, size=len(starts[0]))
            starts.append(np.clip(v, lo, hi))
        best = None
        for v0 in starts:
            res = optimize.minimize(self._neg_log_posterior, v0, args=(X, y, D2), jac=True,
                                    method="L-BFGS-B", bounds=self.bounds, options={"maxiter": 200, "ftol": 1e-7})
            if best is None or res.fun < best.fun:
                best = res
        self.params = GPParams.from_vector(best.x)
        return self.params

    def condition(self, X: np.ndarray, y: np.ndarray, params: GPParams | None = None) -> "Posterior":
        return Posterior(X, y, params or self.params, self.nu)


class Posterior:
    """The GP posterior for fixed data and hyperparameters; ``predict`` is batched."""

    def __init__(self, X: np.ndarray, y: np.ndarray, params: GPParams, nu: float):
        self.X, self.y = np.asarray(X, float), np.asarray(y, float)
        self.params, self.nu = params, nu
        self.ls = np.exp(params.log_ls)
        self.s2, self.noise = math.exp(params.log_signal), math.exp(params.log_noise)
        K = self.s2 * matern(np.sqrt(_sq_dist(self.X, self.X, self.ls)), nu)
        K[np.diag_indices_from(K)] += self.noise
        jitter = 0.0
        while True:
            try:
                self.L = linalg.cholesky(K + jitter * np.eye(len(K)), lower=True, check_finite=False)
                break
            except linalg.LinAlgError:
                jitter = max(jitter * 10, 1e-8)
        self.a = linalg.cho_solve((self.L, True), self.y, check_finite=False)

    def predict(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at each row."""
        Xs = np.atleast_2d(np.asarray(Xs, float))
        Ks = self.s2 * matern(np.sqrt(_sq_dist(Xs, self.X, self.ls)), self.nu)
        mu = Ks @ self.a
        V = linalg.solve_triangular(self.L, Ks.T, lower=True, check_finite=False)
        var = np.maximum(self.s2 - (V * V).sum(0), 1e-12)
        return mu, np.sqrt(var)

    def with_fantasies(self, Xp: np.ndarray, value: float) -> "Posterior":
        """Constant liar: the posterior as if every pending point had returned ``value``."""
        if len(Xp) == 0:
            return self
        return Posterior(np.vstack([self.X, Xp]), np.concatenate([self.y, np.full(len(Xp), value)]),
                         self.params, self.nu)


# ---------------------------------------------------------------------------------------
# Acquisition functions (for minimisation of the modelled target)
# ---------------------------------------------------------------------------------------

def expected_improvement(mu, sigma, best, xi=0.0):
    """EI for minimisation: E[max(best - xi - f, 0)] with f ~ N(mu, sigma²)."""
    mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)
    z = (best - xi - mu) / sigma
    return sigma * (z * special.ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))


def log_h(z: np.ndarray) -> np.ndarray:
    """log(φ(z) + z Φ(z)), accurate for very negative z (where EI underflows to 0)."""
    z = np.asarray(z, float)
    out = np.empty_like(z)
    big = z > -1.0
    zb = z[big]
    out[big] = np.log(np.exp(-0.5 * zb * zb) / math.sqrt(2 * math.pi) + zb * special.ndtr(zb))
    zs = -z[~big]  # > 1
    # φ(z)(1 - |z|·√(π/2)·erfcx(|z|/√2)), written to avoid cancellation.
    x = zs * math.sqrt(math.pi / 2) * special.erfcx(zs / math.sqrt(2))
    tail = np.where(zs < 1e3, np.log1p(-np.minimum(x, 1 - 1e-16)), -2.0 * np.log(np.maximum(zs, 1.0)))
    out[~big] = -0.5 * zs * zs - 0.5 * _LOG_2PI + tail
    return out


def log_expected_improvement(mu, sigma, best, xi=0.0):
    sigma = np.asarray(sigma, float)
    return np.log(sigma) + log_h((best - xi - np.asarray(mu, float)) / sigma)


def probability_of_improvement(mu, sigma, best, xi=0.0):
    return special.ndtr((best - xi - np.asarray(mu, float)) / np.asarray(sigma, float))


def log_probability_of_improvement(mu, sigma, best, xi=0.0):
    return special.log_ndtr((best - xi - np.asarray(mu, float)) / np.asarray(sigma, float))


def lower_confidence_bound(mu, sigma, kappa):
    """UCB for minimisation: larger is better, so this returns -(mu - kappa·sigma)."""
    return -(np.asarray(mu, float) - kappa * np.asarray(sigma, float))
