"""NNI's ``nni.algorithms.hpo.smac_tuner`` (re-export; the code is in ``nniray.strategies.smac_tuner``)."""
from nniray.strategies.smac_tuner import SMACTuner  # noqa: F401

__all__ = ["SMACTuner"]
