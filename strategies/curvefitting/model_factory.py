"""Learning, predicting: the combined curve model of the Curvefitting assessor.

``CurveModel(target_pos).predict(history)`` follows NNI's three stages:

1. ``fit_theta``: least-squares fit of each of the 12 curve functions to the history
   (epochs 1..n), starting from NNI's default parameters (then from all ones, curve_fit's
   default start, if that fails).
2. ``filter_curve``: drop models whose fit failed or is poor (squared error above
   ``n * mean(history)^2``, NNI's bound), then outliers: models whose prediction at
   ``target_pos`` is farther than ``(n/10) * std`` from the median prediction (std estimated
   robustly as 1.4826 * MAD).  With fewer than
   ``LEAST_FITTED_FUNCTION`` (4) models left the prediction is None ("did not converge").
3. ``mcmc_sampling``: Metropolis sampling of the combination
   ``f_comb(x) = sum_k w_k f_k(x; theta_k)`` over the weights *and* the curve parameters, with a
   Gaussian likelihood (noise variance at its maximum-likelihood value) and NNI's prior
   (positive weights, ``f_comb`` increasing from the first epoch to ``target_pos``).  The
   prediction is the mean of ``f_comb(target_pos)`` over the post-burn-in samples.

The sampler is capped (``NUM_CHAINS`` x ``NUM_STEPS`` proposals, all chains advanced together
with numpy) so one assessment costs tens of milliseconds: an assessor is called on every
intermediate result.
"""
from __future__ import annotations

import logging
import math
import warnings

import numpy as np
from scipy import optimize

from .curvefunctions import CURVE_FUNCTIONS, CurveFunction

_logger = logging.getLogger(__name__)

# A model needs at least this many surviving curve functions to predict (NNI: 4).
LEAST_FITTED_FUNCTION = 4
# Metropolis sampler size: chains advanced in parallel, steps per chain, discarded first steps.
NUM_CHAINS = 10
NUM_STEPS = 80
BURN_IN = 40
# Proposal scales: weights (absolute, on the simplex) and curve parameters (relative to |theta|).
WEIGHT_STEP = 0.02
PARAM_STEP = 0.005
# Cap on function evaluations of one least-squares fit: an unfinished fit is still used, the
# filter stage judges its quality (this bounds the cost of one assessment).
MAX_NFEV = 200


def _finite_min_x(cf: CurveFunction) -> int:
    """First epoch where the function is defined (ilog2 divides by log(1) = 0 at epoch 1)."""
    return 2 if cf.name == "ilog2" else 1


class CurveModel:
    """Predicts a learning curve's value at epoch ``target_pos`` from its first epochs."""

    def __init__(self, target_pos: int, rng: np.random.Generator | None = None):
        self.target_pos = int(target_pos)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.trial_history = np.zeros(0)
        self.point_num = 0
        self.fitted: dict[str, np.ndarray] = {}      # name -> least-squares parameters
        self.effective_model: list[CurveFunction] = []
        self.weight_samples = np.zeros((0, 0))       # (samples, models) after MCMC

    # -- stage 1 ------------------------------------------------------------------------------
    def fit_theta(self) -> None:
        self.fitted = {}
        for cf in CURVE_FUNCTIONS:
            theta = fit_curve(cf, self.trial_history)
            if theta is not None:
                self.fitted[cf.name] = theta

    # -- stage 2 ------------------------------------------------------------------------------
    def filter_curve(self) -> None:
        n = self.point_num
        y = self.trial_history
        standard = float(np.mean(y)) ** 2 * n
        candidates, targets = [], []
        for cf in CURVE_FUNCTIONS:
            if cf.name not in self.fitted:
                continue
            theta = self.fitted[cf.name]
            lo = _finite_min_x(cf)
            x = np.arange(lo, n + 1, dtype=float)
            with np.errstate(all="ignore"):
                pred = cf.f(x, *theta)
                target = cf.f(float(self.target_pos), *theta)
            if not (np.all(np.isfinite(pred)) and np.isfinite(target)):
                continue
            if float(np.sum((pred - y[lo - 1:]) ** 2)) >= standard:
                continue  # a poor fit (NNI's bound)
            candidates.append(cf)
            targets.append(float(target))
        self.effective_model = []
        if not candidates:
            return
        targets_arr = np.asarray(targets)
        median = float(np.median(targets_arr))
        # NNI's band is (n/10) * std of the predictions; one exploding model inflates the std so
        # much that it keeps itself in, so the std is estimated robustly (1.4826 * MAD).
        std = 1.4826 * float(np.median(np.abs(targets_arr - median)))
        epsilon = n / 10 * max(std, 1e-6 * max(1.0, abs(median)))
        self.effective_model = [cf for cf, t in zip(candidates, targets) if abs(t - median) <= epsilon]
        _logger.debug("effective curve models: %s", [cf.name for cf in self.effective_model])

    # -- stage 3 ------------------------------------------------------------------------------
    def mcmc_sampling(self) -> np.ndarray:
        """Run the sampler; return the post-burn-in ``f_comb(target_pos)`` samples."""
        models = self.effective_model
        k = len(models)
        n = self.point_num
        y = self.trial_history
        first = max(_finite_min_x(cf) for cf in models)
        xs = np.arange(1, n + 1, dtype=float)
        # Points where every effective model is defined (all of them unless ilog2 is in).
        obs = xs >= first
        x_eval = np.concatenate([xs, [float(first), float(self.target_pos)]])

        w = np.full((NUM_CHAINS, k), 1.0 / k)
        thetas = [np.tile(self.fitted[cf.name], (NUM_CHAINS, 1)) for cf in models]
        cur_pred = self._predict_all(models, thetas, x_eval)            # (chains, k, len(x_eval))
        cur_lp = self._log_posterior(w, cur_pred, y, obs)
        kept = []
        for step in range(NUM_STEPS):
            new_w = np.abs(w + self.rng.normal(0.0, WEIGHT_STEP, size=w.shape))
            new_w /= new_w.sum(axis=1, keepdims=True)
            new_thetas = [t + self.rng.normal(0.0, 1.0, size=t.shape) * (PARAM_STEP * np.abs(t) + 1e-4)
                          for t in thetas]
            new_pred = self._predict_all(models, new_thetas, x_eval)
            new_lp = self._log_posterior(new_w, new_pred, y, obs)
            with np.errstate(invalid="ignore", over="ignore"):
                log_alpha = np.where(np.isfinite(cur_lp), new_lp - cur_lp, np.where(np.isfinite(new_lp), 0.0, -np.inf))
            accept = np.log(self.rng.random(NUM_CHAINS)) < log_alpha
            w = np.where(accept[:, None], new_w, w)
            thetas = [np.where(accept[:, None], nt, t) for nt, t in zip(new_thetas, thetas)]
            cur_pred = np.where(accept[:, None, None], new_pred, cur_pred)
            cur_lp = np.where(accept, new_lp, cur_lp)
            if step >= BURN_IN:
                kept.append(np.einsum("ck,ck->c", w, cur_pred[:, :, -1]))
        self.weight_samples = w
        return np.concatenate(kept) if kept else np.einsum("ck,ck->c", w, cur_pred[:, :, -1])

    @staticmethod
    def _predict_all(models: list[CurveFunction], thetas: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        out = np.empty((thetas[0].shape[0], len(models), len(x)))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for j, (cf, th) in enumerate(zip(models, thetas)):
                out[:, j, :] = cf.f(x[None, :], *[th[:, m:m + 1] for m in range(th.shape[1])])
        return out

    def _log_posterior(self, w: np.ndarray, pred: np.ndarray, y: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Gaussian log-likelihood with the noise variance at its ML value, times NNI's prior."""
        n_obs = int(obs.sum())
        with np.errstate(all="ignore"):
            comb = np.einsum("ck,ckx->cx", w, pred)                   # (chains, len(x_eval))
            fit = comb[:, :len(y)][:, obs]
            sse = np.sum((fit - y[obs]) ** 2, axis=1)
            sigma_sq = np.maximum(sse / n_obs, 1e-12)
            lp = -0.5 * n_obs * (np.log(2 * math.pi * sigma_sq) + 1.0)
        valid = (np.all(np.isfinite(fit), axis=1) & np.all(np.isfinite(comb[:, -2:]), axis=1)
                 & np.all(w > 0, axis=1) & (comb[:, -2] < comb[:, -1]))
        return np.where(valid, lp, -np.inf)

    # -- all stages ---------------------------------------------------------------------------
    def predict(self, trial_history) -> float | None:
        """Expected value at ``target_pos``, or None when too few curve models fit."""
        self.trial_history = np.asarray(trial_history, dtype=float)
        self.point_num = len(self.trial_history)
        if self.point_num == 0:
            return None
        self.fit_theta()
        self.filter_curve()
        if len(self.effective_model) < LEAST_FITTED_FUNCTION:
            return None  # the curves disagree too much: ask for more points
        samples = self.mcmc_sampling()
        samples = samples[np.isfinite(samples)]
        # The median of the sampled predictions: a rare exploding proposal cannot drag it.
        return float(np.median(samples)) if samples.size else None


def fit_curve(cf: CurveFunction, history: np.ndarray) -> np.ndarray | None:
    """Least-squares parameters of ``cf`` for ``history`` at epochs 1..n, or None if no fit."""
    y = np.asarray(history, dtype=float)
    lo = _finite_min_x(cf)
    x = np.arange(lo, len(y) + 1, dtype=float)
    y = y[lo - 1:]
    if len(x) == 0:
        return None

    def residual(theta):
        r = cf.f(x, *theta) - y
        # An overflowing region is a bad region: a large finite residual steers the solver away.
        return np.where(np.isfinite(r), r, 1e6)

    if len(x) < cf.num_params:
        return None  # MINPACK needs at least as many points as parameters
    best, best_sse = None, math.inf
    # NNI's defaults, then curve_fit's own start (all ones); the lower squared error wins, since
    # a start can end in a degenerate local minimum (pow3 from its defaults drifts to alpha ~ 0).
    for start in (np.asarray(cf.defaults, dtype=float), np.ones(cf.num_params)):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if not np.all(np.abs(residual(start)) < 1e6):
                continue
            try:
                # MINPACK's Levenberg-Marquardt (what curve_fit uses) through its thin wrapper:
                # least_squares' Python-level machinery costs ~10x more per fit.
                theta, _, info, _, ier = optimize.leastsq(residual, start, full_output=True, maxfev=MAX_NFEV)
            except (ValueError, TypeError, FloatingPointError, OverflowError, ZeroDivisionError,
                    np.linalg.LinAlgError):
                continue
        # ier 1-4: converged; 5: evaluation cap reached (kept: the filter judges the fit).
        if ier in (1, 2, 3, 4, 5) and np.all(np.isfinite(theta)) and np.all(np.abs(info["fvec"]) < 1e6):
            sse = float(np.sum(info["fvec"] ** 2))
            if sse < best_sse:
                best, best_sse = np.asarray(theta, dtype=float), sse
    return best
