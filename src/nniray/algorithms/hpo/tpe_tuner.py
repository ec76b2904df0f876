"""NNI's ``nni.algorithms.hpo.tpe_tuner`` (re-export; the code is in ``nniray.strategies.tpe``)."""
from nniray.strategies.tpe import TpeTuner  # noqa: F401

__all__ = ["TpeTuner"]
