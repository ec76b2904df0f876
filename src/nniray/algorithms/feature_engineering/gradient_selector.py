"""NNI's ``nni.algorithms.feature_engineering.gradient_selector`` path."""
from nniray.feature_engineering.gradient_selector import FeatureGradientSelector, GradientFeatureSelector  # noqa: F401

__all__ = ["FeatureGradientSelector", "GradientFeatureSelector"]
