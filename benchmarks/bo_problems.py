"""Test problems for the model-based tuner benchmarks (all minimised, known optimum)."""
from __future__ import annotations

import math

import numpy as np

BRANIN_SPACE = {"x": {"_type": "uniform", "_value": [-5, 10]}, "y": {"_type": "uniform", "_value": [0, 15]}}


def branin(p: dict) -> float:
    x, y = p["x"], p["y"]
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return a * (y - b * x * x + c * x - r) ** 2 + s * (1 - t) * math.cos(x) + s


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN6_SPACE = {f"x{i}": {"_type": "uniform", "_value": [0, 1]} for i in range(6)}


def hartmann6(p: dict) -> float:
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


ROSENBROCK4_SPACE = {f"x{i}": {"_type": "uniform", "_value": [-2.048, 2.048]} for i in range(4)}


def rosenbrock4(p: dict) -> float:
    x = np.array([p[f"x{i}"] for i in range(4)])
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


# A mixed space: a log-scale learning rate, a quantised float, an integer and a numeric choice.
MIXED_SPACE = {
    "lr": {"_type": "loguniform", "_value": [1e-5, 1.0]},
    "dropout": {"_type": "quniform", "_value": [0.0, 0.8, 0.05]},
    "layers": {"_type": "randint", "_value": [1, 9]},
    "width": {"_type": "choice", "_value": [16, 32, 64, 128, 256]},
    "momentum": {"_type": "uniform", "_value": [0.0, 1.0]},
}


def mixed(p: dict) -> float:
    """Smooth in log(lr) with an interaction, integer and choice effects; optimum 0 at
    lr=1e-3, dropout=0.3, layers=4, width=64, momentum=0.9."""
    lr = math.log10(p["lr"]) + 3.0
    return (lr ** 2 + 4 * (p["dropout"] - 0.3) ** 2 + 0.1 * (p["layers"] - 4) ** 2
            + 0.5 * (math.log2(p["width"]) - 6) ** 2 + 2 * (p["momentum"] - 0.9) ** 2
            + 0.5 * lr * (p["momentum"] - 0.9))


PROBLEMS = {
    "branin": (BRANIN_SPACE, branin, 0.397887357729739),
    "hartmann6": (HARTMANN6_SPACE, hartmann6, -3.32237),
    "rosenbrock4": (ROSENBROCK4_SPACE, rosenbrock4, 0.0),
    "mixed": (MIXED_SPACE, mixed, 0.0),
}
