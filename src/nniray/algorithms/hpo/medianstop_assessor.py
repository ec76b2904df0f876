"""NNI's ``nni.algorithms.hpo.medianstop_assessor`` (re-export; the code is in ``nniray.strategies.medianstop``)."""
from nniray.strategies.medianstop import MedianstopAssessor  # noqa: F401

__all__ = ["MedianstopAssessor"]
