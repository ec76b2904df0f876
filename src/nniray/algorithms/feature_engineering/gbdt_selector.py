"""NNI's ``nni.algorithms.feature_engineering.gbdt_selector`` path."""
from nniray.feature_engineering.gbdt_selector import GBDTSelector  # noqa: F401

__all__ = ["GBDTSelector"]
