"""NNI's feature engineering: feature selectors with ``fit(X, y)`` and ``get_selected_features()``.

* :class:`GradientFeatureSelector` (NNI's ``FeatureGradientSelector``): learns a relaxed
  feature mask by gradient descent (torch).
* :class:`GBDTSelector`: ranks features by a LightGBM model's importance.

NNI's import paths work too: ``nniray.algorithms.feature_engineering.gradient_selector`` and
``...gbdt_selector``.  Names load on first use (torch and LightGBM are imported only then).
"""
from __future__ import annotations

from typing import Any

from .feature_selector import FeatureSelector

__all__ = ["FeatureSelector", "GradientFeatureSelector", "FeatureGradientSelector", "GBDTSelector"]


def __getattr__(name: str) -> Any:
    if name in ("GradientFeatureSelector", "FeatureGradientSelector"):
        from .gradient_selector import FeatureGradientSelector
        return FeatureGradientSelector
    if name == "GBDTSelector":
        from .gbdt_selector import GBDTSelector
        return GBDTSelector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
