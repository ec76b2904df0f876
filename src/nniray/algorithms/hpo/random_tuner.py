"""NNI's ``nni.algorithms.hpo.random_tuner`` (re-export; the code is in ``nniray.strategies.random_tuner``)."""
from nniray.strategies.random_tuner import RandomTuner  # noqa: F401

__all__ = ["RandomTuner"]
