"""``nniray.mutable``: NNI 3.0's space model, shared by HPO search spaces and NAS model spaces.

    import nniray
    space = nniray.mutable.MutableDict({
        "lr": nniray.loguniform("lr", 1e-4, 1e-1),
        "width": nniray.choice("width", [16, 32, 64]),
    })
    space.simplify()                         # {'lr': Numerical(...), 'width': Categorical(...)}
    space.freeze({"lr": 0.01, "width": 32})  # {'lr': 0.01, 'width': 32}
    (nniray.choice("w", [16, 32]) * 2).freeze({"w": 32})   # 64
"""
from __future__ import annotations

from typing import Any, Sequence

from .frozen import current_sample, ensure_frozen, frozen_context
from .label import auto_label, label_scope
from .mutable import (
    MISSING, Categorical, CategoricalMultiple, DuplicateLabelError, LabeledMutable, Mutable, MutableDict,
    MutableExpression, MutableList, Numerical, Sample, SampleMissingError, SampleValidationError, grid_samples,
)
from .search_space import from_search_space, to_search_space

__all__ = [
    "Mutable", "LabeledMutable", "Categorical", "CategoricalMultiple", "Numerical", "MutableExpression",
    "MutableDict", "MutableList", "Sample", "SampleValidationError", "SampleMissingError", "DuplicateLabelError",
    "MISSING", "choice", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal", "lognormal",
    "qlognormal", "randint", "auto_label", "label_scope", "frozen_context", "current_sample", "ensure_frozen",
    "to_search_space", "from_search_space", "grid_samples",
]


# NNI 3.0's helpers: the label comes first (``nni.choice('dropout', [0.1, 0.2])``).
def choice(label: str, choices: Sequence[Any]) -> Categorical:
    return Categorical(list(choices), label=label)


def uniform(label: str, low: float, high: float) -> Numerical:
    return Numerical(low, high, label=label)


def quniform(label: str, low: float, high: float, quantize: float) -> Numerical:
    return Numerical(low, high, quantize=quantize, label=label)


def loguniform(label: str, low: float, high: float) -> Numerical:
    return Numerical(low, high, log_distributed=True, label=label)


def qloguniform(label: str, low: float, high: float, quantize: float) -> Numerical:
    return Numerical(low, high, log_distributed=True, quantize=quantize, label=label)


def normal(label: str, mu: float, sigma: float) -> Numerical:
    return Numerical(mu=mu, sigma=sigma, label=label)


def qnormal(label: str, mu: float, sigma: float, quantize: float) -> Numerical:
    return Numerical(mu=mu, sigma=sigma, quantize=quantize, label=label)


def lognormal(label: str, mu: float, sigma: float) -> Numerical:
    return Numerical(mu=mu, sigma=sigma, log_distributed=True, label=label)


def qlognormal(label: str, mu: float, sigma: float, quantize: float) -> Numerical:
    return Numerical(mu=mu, sigma=sigma, log_distributed=True, quantize=quantize, label=label)


def randint(label: str, lower: int, upper: int) -> Numerical:
    """An integer in [lower, upper) (upper exclusive, as NNI's ``randint``)."""
    return Numerical(int(lower), int(upper), integer=True, label=label)
