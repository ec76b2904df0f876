"""NNI's Python experiment API (``nni.experiment``)."""
from nniray.config import (
    AlgorithmConfig, CustomAlgorithmConfig, ExperimentConfig, LocalConfig, RemoteConfig, RemoteMachineConfig,
)

from .experiment import Experiment, ExperimentError, TrialJob, TrialMetricData, TrialResult

__all__ = ["Experiment", "ExperimentError", "ExperimentConfig", "AlgorithmConfig", "CustomAlgorithmConfig",
           "LocalConfig", "RemoteConfig", "RemoteMachineConfig", "TrialResult", "TrialMetricData", "TrialJob"]
