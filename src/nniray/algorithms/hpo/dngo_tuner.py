"""NNI's ``nni.algorithms.hpo.dngo_tuner`` (re-export; the code is in ``nniray.strategies.dngo``)."""
from nniray.strategies.dngo import DNGOTuner  # noqa: F401

__all__ = ["DNGOTuner"]
