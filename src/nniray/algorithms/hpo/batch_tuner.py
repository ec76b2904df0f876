"""NNI's ``nni.algorithms.hpo.batch_tuner`` (re-export; the code is in ``nniray.strategies.batch_tuner``)."""
from nniray.strategies.batch_tuner import BatchTuner  # noqa: F401

__all__ = ["BatchTuner"]
