"""Maximise an acquisition function over a :class:`UnitSpace` quickly.

1. Score a pool of candidates in one batched call: uniform random points plus Gaussian
   perturbations of the best observed points (local search finds the last digits that a
   uniform pool of a few thousand points misses in 4+ dimensions).
2. Polish the best few with one joint L-BFGS-B run over the continuous dimensions (the
   starts are independent, so the sum of their values is maximised; the gradient comes from
   one batched forward-difference call).
3. Snap to legal values and hill-climb the discrete dimensions one grid step at a time.

This replaces NNI's 100 000 random warm-up points + 250 L-BFGS-B starts, which cost seconds
per suggestion, with the same kind of search at a fraction of the cost.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import optimize

from ._bo_space import UnitSpace

Acquisition = Callable[[np.ndarray], np.ndarray]

_LOCAL_SCALES = (0.01, 0.05, 0.2)


def _distinct_top(U: np.ndarray, vals: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-vals)
    chosen: list[int] = []
    for i in order:
        if not np.isfinite(vals[i]):
            break
        if all(np.max(np.abs(U[i] - U[j])) > 1e-6 for j in chosen):
            chosen.append(int(i))
        if len(chosen) >= k:
            break
    return chosen


def _is_excluded(U: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """Rows of ``U`` equal (to 1e-9) to a row of ``exclude``, by hashing rounded rows."""
    if len(exclude) == 0 or len(U) == 0:
        return np.zeros(len(U), dtype=bool)
    keys = {r.tobytes() for r in np.round(np.asarray(exclude) * 1e9).astype(np.int64)}
    Ui = np.round(np.asarray(U) * 1e9).astype(np.int64)
    return np.fromiter((r.tobytes() in keys for r in Ui), dtype=bool, count=len(Ui))


def maximize_acquisition(acq: Acquisition, space: UnitSpace, rng: np.random.Generator, *,
                         anchors: np.ndarray, exclude: np.ndarray, n_pool: int = 2000,
                         n_starts: int = 5, maxiter: int = 100) -> np.ndarray:
    """The best legal unit vector found, avoiding rows of ``exclude`` (already observed or
    pending) when any other point is possible."""
    d = space.dim
    n_local = n_pool // 2 if len(anchors) else 0
    pool = [rng.uniform(size=(n_pool - n_local, d))]
    if n_local:
        centres = anchors[rng.integers(len(anchors), size=n_local)]
        scales = np.asarray(_LOCAL_SCALES)[rng.integers(len(_LOCAL_SCALES), size=(n_local, 1))]
        # Perturb a random subset of coordinates (at least one), as in TuRBO / Optuna's GP.
        mask = rng.uniform(size=(n_local, d)) < max(0.2, 1.0 / d) * 2
        mask[np.arange(n_local), rng.integers(d, size=n_local)] = True
        pool.append(np.clip(centres + mask * rng.normal(size=(n_local, d)) * scales, 0.0, 1.0))
    P = space.snap(np.vstack(pool))
    vals = acq(P)
    vals[_is_excluded(P, exclude)] = -np.inf

    cont = np.flatnonzero(~space.discrete)
    # Polish the best local *and* the best uniform candidates: local ones alone would keep
    # every start in the incumbent's basin.
    n_uniform = n_pool - n_local
    k_uniform = max(1, (3 * n_starts) // 8) if n_local else n_starts
    starts = [int(i) for i in _distinct_top(P[:n_uniform], vals[:n_uniform], k_uniform)]
    if n_local:
        starts += [n_uniform + i for i in _distinct_top(P[n_uniform:], vals[n_uniform:], n_starts - len(starts))]
    cands = [P[i] for i in starts]
    if len(cont) and starts:
        cands += list(_polish(acq, P[starts], cont, maxiter))
    if not cands:  # everything excluded: the space is (nearly) exhausted
        cands = [P[int(np.argmax(acq(P)))]]
    C = space.snap(np.array(cands))
    cv = acq(C)
    cv[_is_excluded(C, exclude)] = -np.inf
    best = C[int(np.argmax(cv))]
    best_val = float(np.max(cv))
    if space.discrete.any():
        best, best_val = _hill_climb(acq, space, best, best_val, exclude)
    return best


def _polish(acq: Acquisition, X0: np.ndarray, cont: np.ndarray, maxiter: int) -> np.ndarray:
    k, c = len(X0), len(cont)
    h = 1e-6

    def fun(z):
        Z = z.reshape(k, c)
        base = X0.copy()
        base[:, cont] = Z
        batch = np.repeat(base[:, None, :], c + 1, axis=1)  # (k, c+1, d)
        for j, dim in enumerate(cont):
            batch[:, j + 1, dim] += np.where(Z[:, j] + h <= 1.0, h, -h)
        v = acq(batch.reshape(-1, base.shape[1])).reshape(k, c + 1)
        steps = np.where(Z + h <= 1.0, h, -h)
        grad = (v[:, 1:] - v[:, :1]) / steps
        return -float(v[:, 0].sum()), -grad.ravel()

    z0 = X0[:, cont].ravel()
    res = optimize.minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(z0),
                            options={"maxiter": maxiter})
    out = X0.copy()
    out[:, cont] = res.x.reshape(k, c)
    return out


def _hill_climb(acq: Acquisition, space: UnitSpace, u: np.ndarray, val: float, exclude: np.ndarray,
                max_passes: int = 3) -> tuple[np.ndarray, float]:
    for _ in range(max_passes):
        N = space.neighbours(u)
        if len(N) == 0:
            break
        N = space.snap(N)
        nv = acq(N)
        nv[_is_excluded(N, exclude)] = -np.inf
        i = int(np.argmax(nv))
        if not nv[i] > val:
            break
        u, val = N[i], float(nv[i])
    return u, val
