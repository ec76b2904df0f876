"""NNI's ``nni.algorithms.hpo.hyperopt_tuner`` (re-export; the code is in ``nniray.strategies.hyperopt_tuner``)."""
from nniray.strategies.hyperopt_tuner import HyperoptTuner  # noqa: F401

__all__ = ["HyperoptTuner"]
