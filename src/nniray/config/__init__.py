"""NNI's v2 experiment config: YAML in camelCase, Python in snake_case."""
from .base import ConfigError, format_duration, parse_duration
from .experiment_config import (
    AlgorithmConfig, CustomAlgorithmConfig, ExperimentConfig, build_config, load_config,
)
from .training_service import (
    AmlConfig, DlcConfig, FrameworkControllerConfig, KubeflowConfig, LocalConfig, OpenpaiConfig,
    RemoteConfig, RemoteMachineConfig, SharedStorageConfig,
)

__all__ = [
    "ConfigError", "parse_duration", "format_duration", "AlgorithmConfig", "CustomAlgorithmConfig",
    "ExperimentConfig", "build_config", "load_config", "LocalConfig", "RemoteConfig", "RemoteMachineConfig",
    "OpenpaiConfig", "AmlConfig", "DlcConfig", "KubeflowConfig", "FrameworkControllerConfig", "SharedStorageConfig",
]
