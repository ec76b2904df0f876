"""NNI's ``nni.algorithms.hpo.regularized_evolution_tuner`` (re-export; the code is in ``nniray.strategies.regularized_evolution``)."""
from nniray.strategies.regularized_evolution import RegularizedEvolutionTuner  # noqa: F401

__all__ = ["RegularizedEvolutionTuner"]
