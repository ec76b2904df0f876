"""Training-service configs of NNI's v2 schema.  All are parsed and validated; ``local`` runs
trials on the Ray cluster the experiment is attached to, the others are refused at start with
a clear message until their launchers land."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, StrictInt, field_validator

from .base import ConfigBase


def _gpu_indices(v: Any) -> Optional[list[int]]:
    """NNI accepts a list, a comma-separated string or a single int."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError("gpuIndices must be a list of ints, an int or a string like '0,1'")
    if isinstance(v, int):
        out = [v]
    elif isinstance(v, str):
        try:
            out = [int(x) for x in v.split(",") if x.strip() != ""]
        except ValueError:
            raise ValueError(f"gpuIndices string must be comma-separated ints like '0,1', got {v!r}") from None
    elif isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        out = list(v)
    else:
        raise ValueError(f"gpuIndices must be a list of GPU indices (ints), an int or a string like '0,1', got {v!r}")
    if any(x < 0 for x in out):
        raise ValueError(f"gpuIndices must be non-negative GPU indices, got {v!r}")
    return out


class _GpuOptions(ConfigBase):
    use_active_gpu: Optional[bool] = None
    max_trial_number_per_gpu: StrictInt = Field(1, ge=1)
    gpu_indices: Optional[list[int]] = None

    _norm_gpu = field_validator("gpu_indices", mode="before")(_gpu_indices)


class LocalConfig(_GpuOptions):
    platform: Literal["local"] = "local"
    # nniray extensions (documented in docs/decisions/runtime.md)
    trial_cpu_number: Optional[float] = Field(None, gt=0, description="CPUs reserved per trial; default: the cluster's CPUs / concurrency, at most 1")
    ray_address: Optional[str] = Field(None, description="attach to this Ray cluster ('auto' or 'host:port'); default: start or reuse a local one")
    max_trial_retries: StrictInt = Field(0, ge=0, description="re-run a trial whose worker node or runner died, this many times")


class RemoteMachineConfig(_GpuOptions):
    host: str
    port: int = 22
    user: str
    password: Optional[str] = None
    ssh_key_file: Optional[str] = None
    ssh_passphrase: Optional[str] = None
    python_path: Optional[str] = None


class RemoteConfig(ConfigBase):
    platform: Literal["remote"] = "remote"
    machine_list: list[RemoteMachineConfig] = Field(min_length=1)
    reuse_mode: bool = True


class OpenpaiConfig(ConfigBase):
    platform: Literal["openpai", "pai"] = "openpai"
    host: str
    username: str
    token: str
    trial_cpu_number: Optional[int] = None
    trial_memory_size: Optional[str] = None
    storage_config_name: Optional[str] = None
    docker_image: str = "msranni/nni:latest"
    virtual_cluster: Optional[str] = None
    local_storage_mount_point: Optional[str] = None
    container_storage_mount_point: Optional[str] = None
    reuse_mode: bool = True
    openpai_config: Optional[dict] = None
    openpai_config_file: Optional[str] = None


class AmlConfig(ConfigBase):
    platform: Literal["aml"] = "aml"
    docker_image: str = "msranni/nni:latest"
    subscription_id: str
    resource_group: str
    workspace_name: str
    compute_target: str
    max_trial_number_per_gpu: int = 1
    use_active_gpu: Optional[bool] = None


class DlcConfig(ConfigBase):
    platform: Literal["dlc"] = "dlc"
    type: str = "Worker"
    image: str
    job_type: str = "TFJob"
    pod_count: int | str = 1
    ecs_spec: str
    region: str
    nas_data_source_id: str
    access_key_id: str
    access_key_secret: str
    local_storage_mount_point: str = "/home/admin/workspace/"
    container_storage_mount_point: str = "/root/data/"


class _K8sStorage(ConfigBase):
    storage_type: str
    server: Optional[str] = None
    path: Optional[str] = None
    azure_account: Optional[str] = None
    azure_share: Optional[str] = None
    key_vault_name: Optional[str] = None
    key_vault_key: Optional[str] = None


class _K8sRole(ConfigBase):
    name: Optional[str] = None
    command: str
    code_directory: Optional[str] = None
    docker_image: str
    replicas: Optional[int] = None
    task_number: Optional[int] = None
    cpu_number: Optional[float] = None
    gpu_number: Optional[int] = None
    memory_size: Optional[str] = None
    framework_attempt_completion_policy: Optional[dict] = None


class KubeflowConfig(ConfigBase):
    platform: Literal["kubeflow"] = "kubeflow"
    operator: Literal["tf-operator", "pytorch-operator"]
    api_version: str = "v1"
    storage: _K8sStorage
    worker: Optional[_K8sRole] = None
    ps: Optional[_K8sRole] = None
    master: Optional[_K8sRole] = None
    reuse_mode: bool = True


class FrameworkControllerConfig(ConfigBase):
    platform: Literal["frameworkcontroller"] = "frameworkcontroller"
    service_account_name: Optional[str] = None
    task_roles: list[_K8sRole] = Field(min_length=1)
    storage: _K8sStorage
    reuse_mode: bool = True
    namespace: Optional[str] = None
    config_path: Optional[str] = None


class AdlConfig(ConfigBase):
    platform: Literal["adl"] = "adl"
    namespace: str = "default"
    image: Optional[str] = None


TrainingServiceConfig = Annotated[
    Union[LocalConfig, RemoteConfig, OpenpaiConfig, AmlConfig, DlcConfig, KubeflowConfig,
          FrameworkControllerConfig, AdlConfig],
    Field(discriminator="platform"),
]

PLATFORM_CLASSES = {
    "local": LocalConfig, "remote": RemoteConfig, "openpai": OpenpaiConfig, "pai": OpenpaiConfig,
    "aml": AmlConfig, "dlc": DlcConfig, "kubeflow": KubeflowConfig,
    "frameworkcontroller": FrameworkControllerConfig, "adl": AdlConfig,
}


# NNI's names for the Kubernetes storage and role sections.
K8sStorageConfig = _K8sStorage
KubeflowRoleConfig = _K8sRole
FrameworkControllerRoleConfig = _K8sRole


class K8sNfsConfig(_K8sStorage):
    storage_type: str = "nfs"


class K8sAzureStorageConfig(_K8sStorage):
    storage_type: str = "azureStorage"


class SharedStorageConfig(ConfigBase):
    storage_type: Literal["NFS", "AzureBlob"]
    local_mount_point: str
    remote_mount_point: str
    local_mounted: Literal["usermount", "nnimount", "nomount"]
    nfs_server: Optional[str] = None
    exported_directory: Optional[str] = None
    storage_account_name: Optional[str] = None
    storage_account_key: Optional[str] = None
    container_name: Optional[str] = None
    resource_group_name: Optional[str] = None


class NfsConfig(SharedStorageConfig):
    """``sharedStorage`` with ``storageType: NFS`` (NNI's ``NfsConfig``)."""

    storage_type: Literal["NFS"] = "NFS"


class AzureBlobConfig(SharedStorageConfig):
    """``sharedStorage`` with ``storageType: AzureBlob`` (NNI's ``AzureBlobConfig``)."""

    storage_type: Literal["AzureBlob"] = "AzureBlob"
