"""NNI's v2 experiment config: YAML in camelCase, Python in snake_case."""
from .base import ConfigError, format_duration, parse_duration
from .experiment_config import (
    AlgorithmConfig, CustomAlgorithmConfig, ExperimentConfig, build_config, load_config,
)
from .training_service import (
    AmlConfig, AzureBlobConfig, DlcConfig, FrameworkControllerConfig, FrameworkControllerRoleConfig,
    K8sAzureStorageConfig, K8sNfsConfig, K8sStorageConfig, KubeflowConfig, KubeflowRoleConfig, LocalConfig,
    NfsConfig, OpenpaiConfig, RemoteConfig, RemoteMachineConfig, SharedStorageConfig, TrainingServiceConfig,
)

__all__ = [
    "ConfigError", "parse_duration", "format_duration", "AlgorithmConfig", "CustomAlgorithmConfig",
    "ExperimentConfig", "build_config", "load_config", "LocalConfig", "RemoteConfig", "RemoteMachineConfig",
    "OpenpaiConfig", "AmlConfig", "DlcConfig", "KubeflowConfig", "FrameworkControllerConfig", "SharedStorageConfig",
    "NfsConfig", "AzureBlobConfig", "K8sStorageConfig", "K8sNfsConfig", "K8sAzureStorageConfig", "KubeflowRoleConfig",
    "FrameworkControllerRoleConfig", "TrainingServiceConfig",
]
