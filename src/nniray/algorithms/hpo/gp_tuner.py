"""NNI's ``nni.algorithms.hpo.gp_tuner`` (re-export; the code is in ``nniray.strategies.gp``)."""
from nniray.strategies.gp import GPTuner  # noqa: F401

__all__ = ["GPTuner"]
