"""NNI's ``nni.algorithms.hpo.pbt_tuner`` (re-export; the code is in ``nniray.strategies.pbt``)."""
from nniray.strategies.pbt import PBTTuner  # noqa: F401

__all__ = ["PBTTuner"]
