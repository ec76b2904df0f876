"""NNI's ``nni.algorithms.hpo.evolution_tuner`` (re-export; the code is in ``nniray.strategies.evolution``)."""
from nniray.strategies.evolution import EvolutionTuner  # noqa: F401

__all__ = ["EvolutionTuner"]
