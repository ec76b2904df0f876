"""NNI's ``nni.algorithms.hpo.networkmorphism_tuner.networkmorphism_tuner`` path."""
from nniray.strategies.networkmorphism import NetworkMorphismTuner  # noqa: F401

__all__ = ["NetworkMorphismTuner"]
