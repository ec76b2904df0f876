"""NNI's ``nni.algorithms.hpo.curvefitting_assessor`` (re-export; the code is in ``nniray.strategies.curvefitting``)."""
from nniray.strategies.curvefitting import CurvefittingAssessor  # noqa: F401

__all__ = ["CurvefittingAssessor"]
