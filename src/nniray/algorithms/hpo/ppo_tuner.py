"""NNI's ``nni.algorithms.hpo.ppo_tuner`` (re-export; the code is in ``nniray.strategies.ppo``)."""
from nniray.strategies.ppo import PPOTuner  # noqa: F401

__all__ = ["PPOTuner"]
