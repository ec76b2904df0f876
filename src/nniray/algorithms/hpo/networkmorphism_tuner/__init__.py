"""NNI's ``nni.algorithms.hpo.networkmorphism_tuner`` (re-export of ``nniray.strategies.networkmorphism``)."""
from nniray.strategies.networkmorphism import NetworkMorphismTuner  # noqa: F401

__all__ = ["NetworkMorphismTuner"]
