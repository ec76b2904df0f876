"""NNI's ``nni.algorithms.hpo.gridsearch_tuner`` (re-export; the code is in ``nniray.strategies.gridsearch``)."""
from nniray.strategies.gridsearch import GridSearchTuner  # noqa: F401

__all__ = ["GridSearchTuner"]
