"""``nniray.nas.experiment`` (``NasExperiment``) and, as an alias,
``nniray.retiarii.experiment.pytorch`` (``RetiariiExperiment``, ``RetiariiExeConfig``)."""
from .experiment import NasExperiment, NasExperimentConfig, RetiariiExeConfig, RetiariiExperiment  # noqa: F401

__all__ = ["NasExperiment", "NasExperimentConfig", "RetiariiExperiment", "RetiariiExeConfig"]
