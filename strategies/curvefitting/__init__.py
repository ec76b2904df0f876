"""Curvefitting assessor: learning-curve extrapolation with 12 curve models (NNI's LPA)."""
from .assessor import CurvefittingAssessor
from .curvefunctions import CURVE_FUNCTIONS
from .model_factory import CurveModel

__all__ = ["CurvefittingAssessor", "CurveModel", "CURVE_FUNCTIONS"]
