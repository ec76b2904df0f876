"""The 12 learning-curve models of the Curvefitting assessor (Domhan et al. 2015, as in NNI).

Each model is ``f(x, *theta)`` for epoch ``x >= 1``, vectorized over numpy arrays (``theta``
entries may be arrays too, which the MCMC uses to evaluate many chains at once).  ``DEFAULTS``
holds NNI's starting parameters for the least-squares fit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def vap(x, a, b, c):
    """Vapor pressure: ``exp(a + b/x + c*log(x))``."""
    return np.exp(a + b / x + c * np.log(x))


def pow3(x, c, a, alpha):
    """``c - a * x^(-alpha)``."""
    return c - a * x ** (-alpha)


def linear(x, a, b):
    """``a*x + b``."""
    return a * x + b


def logx_linear(x, a, b):
    """``a*log(x) + b``."""
    return a * np.log(x) + b


def dr_hill_zero_background(x, theta, eta, kappa):
    """``theta * x^eta / (kappa^eta + x^eta)``."""
    return (theta * x ** eta) / (kappa ** eta + x ** eta)


def log_power(x, a, b, c):
    """Logistic power: ``a / (1 + (x / exp(b))^c)``."""
    return a / (1.0 + (x / np.exp(b)) ** c)


def pow4(x, alpha, a, b, c):
    """``c - (a*x + b)^(-alpha)``."""
    return c - (a * x + b) ** (-alpha)


def mmf(x, alpha, beta, kappa, delta):
    """Morgan-Mercer-Flodin: ``alpha - (alpha - beta) / (1 + (kappa*x)^delta)``."""
    return alpha - (alpha - beta) / (1.0 + (kappa * x) ** delta)


def exp4(x, c, a, b, alpha):
    """``c - exp(-a * x^alpha + b)``."""
    return c - np.exp(-a * x ** alpha + b)


def ilog2(x, c, a):
    """``c - a / log(x)`` (undefined at x = 1, where log(x) = 0)."""
    return c - a / np.log(x)


def weibull(x, alpha, beta, kappa, delta):
    """Weibull: ``alpha - (alpha - beta) * exp(-(kappa*x)^delta)``."""
    return alpha - (alpha - beta) * np.exp(-(kappa * x) ** delta)


def janoschek(x, a, beta, k, delta):
    """Janoschek: ``a - (a - beta) * exp(-k * x^delta)``."""
    return a - (a - beta) * np.exp(-k * x ** delta)


@dataclass(frozen=True)
class CurveFunction:
    name: str
    f: Callable
    defaults: tuple  # NNI's starting point of the least-squares fit

    @property
    def num_params(self) -> int:
        return len(self.defaults)


# Order as in NNI's ``curve_combination_models``.
CURVE_FUNCTIONS: tuple[CurveFunction, ...] = (
    CurveFunction("vap", vap, (-0.622028, -0.470050, 0.042322)),
    CurveFunction("pow3", pow3, (0.84, 0.52, 0.01)),
    CurveFunction("linear", linear, (1.0, 0.0)),
    CurveFunction("logx_linear", logx_linear, (0.378106, 0.046506)),
    CurveFunction("dr_hill_zero_background", dr_hill_zero_background, (0.772320, 0.586449, 2.460843)),
    CurveFunction("log_power", log_power, (0.77, 2.98, -0.51)),
    CurveFunction("pow4", pow4, (0.1, 200.0, 0.0, 0.8)),
    CurveFunction("mmf", mmf, (0.7, 0.1, 0.01, 5.0)),
    CurveFunction("exp4", exp4, (0.7, 0.8, -0.8, 0.3)),
    CurveFunction("ilog2", ilog2, (0.78, 0.43)),
    CurveFunction("weibull", weibull, (0.7, 0.1, 0.01, 1.0)),
    CurveFunction("janoschek", janoschek, (0.73, 0.07, 0.355, 0.46)),
)
BY_NAME = {c.name: c for c in CURVE_FUNCTIONS}
