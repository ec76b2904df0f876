"""NNI's ``FeatureSelector`` base (``nni.feature_engineering.feature_selector``)."""
from __future__ import annotations

from typing import Any

import numpy as np


class FeatureSelectorError(ValueError):
    """Bad input to a feature selector; the message names the argument."""


class FeatureSelector:
    """Base class: ``fit(X, y, **kwargs)`` learns, ``get_selected_features()`` returns the
    selected column indices (best first)."""

    def __init__(self, **kwargs: Any) -> None:
        self.selected_features_: list[int] | None = None
        self.X = None
        self.y = None

    def fit(self, X: Any, y: Any, **kwargs: Any) -> "FeatureSelector":
        self.X, self.y = check_xy(X, y)
        return self

    def get_selected_features(self) -> list[int]:
        if self.selected_features_ is None:
            raise FeatureSelectorError("call fit(X, y) before get_selected_features()")
        return list(self.selected_features_)


def check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """X as a 2-D float array and y as a 1-D array of the same length, or a clear error."""
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise FeatureSelectorError("X must be a 2-D array of numbers (samples x features)") from None
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise FeatureSelectorError(f"X must be 2-D with at least 2 samples and 1 feature, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise FeatureSelectorError("X contains NaN or inf; impute or drop those values first")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise FeatureSelectorError(f"y must be 1-D with one value per row of X ({len(X)}), got shape {y.shape}")
    return X, y


def check_k(name: str, k: Any, n_features: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_features:
        raise FeatureSelectorError(f"{name} must be an integer in [1, {n_features}] (the number of features), got {k!r}")
    return int(k)
