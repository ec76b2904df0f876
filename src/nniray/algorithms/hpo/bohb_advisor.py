"""NNI's ``nni.algorithms.hpo.bohb_advisor`` (re-export; the code is in ``nniray.strategies.bohb``)."""
from nniray.strategies.bohb import BOHB  # noqa: F401

__all__ = ["BOHB"]
