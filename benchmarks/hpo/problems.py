"""Benchmark problems, all minimised, in NNI's search-space format.

Synthetic functions have a known optimum ``f_star``; the two ML tasks (scikit-learn's bundled
data, no download) have ``f_star=None`` and their regret is taken against the best error any
optimizer found in the run (see :mod:`benchmarks.hpo.report`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Problem:
    name: str
    search_space: dict
    fn: Callable[[dict], float]
    f_star: float | None  # None: regret against the best value found in the run
    description: str

    def __call__(self, params: dict) -> float:
        return float(self.fn(params))


def _u(lo: float, hi: float) -> dict:
    return {"_type": "uniform", "_value": [lo, hi]}


# -- synthetic ---------------------------------------------------------------------------------

def branin(p: dict) -> float:
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p: dict) -> float:
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def rosenbrock4(p: dict) -> float:
    x = [p[f"x{i}"] for i in range(4)]
    return float(sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3)))


_MIXED_CHOICE_COST = {0.5: 1.0, 1.0: 0.4, 2.0: 0.0, 4.0: 0.7}


def mixed(p: dict) -> float:
    """Continuous x, y + numeric choice c + randint k; optimum 0 at x=1, y=-0.5, c=2, k=7.
    The choice's cost is not monotone in its value, so it must be treated as categorical."""
    x, y, c, k = p["x"], p["y"], float(p["c"]), int(p["k"])
    smooth = (x - 1) ** 2 + 2 * (y + 0.5) ** 2 + 0.5 * (1 - math.cos(2 * math.pi * (x - 1)))
    return smooth * (1 + 0.5 * abs(c - 2.0)) + _MIXED_CHOICE_COST[c] + 0.05 * (k - 7) ** 2


# -- ML tasks ------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    return load_breast_cancer(return_X_y=True)


@lru_cache(maxsize=None)
def _digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).choice(len(y), 400, replace=False)  # fixed subsample: cheap CV
    return X[idx] / 16.0, y[idx]


def _cv_error(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    cv = StratifiedKFold(3, shuffle=True, random_state=0)  # same folds for every optimizer
    return float(1.0 - cross_val_score(model, X, y, cv=cv).mean())


def hgb_breast_cancer(p: dict) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    X, y = _breast_cancer()
    model = HistGradientBoostingClassifier(
        learning_rate=p["learning_rate"], max_leaf_nodes=int(p["max_leaf_nodes"]),
        min_samples_leaf=int(p["min_samples_leaf"]), l2_regularization=p["l2_regularization"],
        max_iter=10, max_bins=32, early_stopping=False, random_state=0)
    return _cv_error(model, X, y)


def svm_digits(p: dict) -> float:
    from sklearn.svm import SVC
    X, y = _digits()
    return _cv_error(SVC(C=p["C"], gamma=p["gamma"]), X, y)


PROBLEMS: dict[str, Problem] = {p.name: p for p in [
    Problem("branin", {"x1": _u(-5, 10), "x2": _u(0, 15)}, branin, 0.397887357729739,
            "Branin-Hoo, 2-D"),
    Problem("hartmann6", {f"x{i}": _u(0, 1) for i in range(6)}, hartmann6, -3.322368011415515,
            "Hartmann-6, 6-D on [0,1]^6"),
    Problem("rosenbrock4", {f"x{i}": _u(-2, 2) for i in range(4)}, rosenbrock4, 0.0,
            "Rosenbrock, 4-D on [-2,2]^4"),
    Problem("mixed", {"x": _u(-3, 3), "y": _u(-3, 3),
                      "c": {"_type": "choice", "_value": [0.5, 1.0, 2.0, 4.0]},
                      "k": {"_type": "randint", "_value": [0, 20]}}, mixed, 0.0,
            "2 continuous + 4-way numeric choice (categorical effect) + randint[0,20)"),
    Problem("hgb_breast_cancer", {
        "learning_rate": {"_type": "loguniform", "_value": [0.01, 1.0]},
        "max_leaf_nodes": {"_type": "randint", "_value": [2, 64]},
        "min_samples_leaf": {"_type": "randint", "_value": [1, 64]},
        "l2_regularization": {"_type": "loguniform", "_value": [1e-6, 10.0]}},
        hgb_breast_cancer, None,
        "HistGradientBoosting (10 iters) on breast_cancer, 3-fold CV error"),
    Problem("svm_digits", {"C": {"_type": "loguniform", "_value": [1e-2, 1e3]},
                           "gamma": {"_type": "loguniform", "_value": [1e-5, 1.0]}},
            svm_digits, None, "RBF SVC on 400 digits, 3-fold CV error"),
]}
