"""NNI's ``nni.algorithms.hpo.metis_tuner`` (re-export; the code is in ``nniray.strategies.metis``)."""
from nniray.strategies.metis import MetisTuner  # noqa: F401

__all__ = ["MetisTuner"]
