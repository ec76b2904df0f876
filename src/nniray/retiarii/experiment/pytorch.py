"""``nni.retiarii.experiment.pytorch``: the same classes as :mod:`nniray.nas.experiment`."""
from nniray.nas.experiment import RetiariiExeConfig, RetiariiExperiment  # noqa: F401

__all__ = ["RetiariiExperiment", "RetiariiExeConfig"]
