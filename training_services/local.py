"""The ``local`` training service: run an experiment on a Ray cluster.

"Local" is NNI's name for "the machine the manager runs on"; here it is whichever Ray cluster
the driver is attached to: a fresh single-node Ray started on this machine (the default), or an
existing cluster given by address (``trainingService.rayAddress``), including a cloud cluster
brought up by Ray's autoscaler.  The SSH / Kubernetes / AML / PAI launchers bring such a cluster
up; the experiment runtime is the same.

It implements :class:`nniray.runtime.ports.TrainingService`: connecting (the one place that
starts or joins Ray), placement of a trial's runner, whether a trial can ever fit, the runner
pool the controller draws on, and teardown.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

import ray
from ray import cloudpickle
from ray._private import ray_constants

from nniray.actors import names
from nniray.actors.handles import (RunnerActor, find_actor, kill_actor, runner_actor_options,
                                   runner_resources)
from nniray.config import ConfigError

# The single-node cluster nniray starts itself listens on loopback only: nothing on the
# network can reach its GCS, raylet or metrics ports.
LOOPBACK = "127.0.0.1"


def connect_ray(address: str | None = None, gpu_indices: list[int] | None = None,
                log_to_driver: bool = False) -> bool:
    """Attach this process to Ray, or start a local single-node cluster.  Returns True if this
    call started (or joined) Ray, False if the process was already attached.

    ``address`` (``trainingService.rayAddress``; ``RAY_ADDRESS`` counts as one): ``auto`` or
    ``host:port`` joins that cluster; ``local`` or none starts a fresh cluster owned by this
    process (a bare ``ray.init()`` would join whatever ``/tmp/ray/ray_current_cluster`` names).
    ``gpu_indices`` limits the GPUs a cluster started here may hand to trials."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(namespace=names.NAMESPACE, log_to_driver=log_to_driver, logging_level="WARNING",
                                  configure_logging=True)
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "local":
        with _scoped_env(_quiet_env()):
            ray.init(address=address, **kwargs)
        return True
    env = _quiet_env()
    if gpu_indices is not None:
        # Ray only sees the GPUs in CUDA_VISIBLE_DEVICES when its raylet starts; set for the
        # processes ray.init spawns, not left behind in the caller's environment.
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_indices)
    # Ray 2.60 turns a node address of 127.0.0.1 into the machine's network address (and its
    # servers then listen on every interface) unless it believes clustering is off, which its
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 says: for the processes ray.init starts (environment)
    # and for this one (the constant it read at import).
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    with _scoped_env(env), _loopback_node():
        ray.init(address="local", include_dashboard=False, _node_ip_address=LOOPBACK, **kwargs)
    return True


@contextlib.contextmanager
def _loopback_node() -> Iterator[None]:
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def disconnect_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()


def _quiet_env() -> dict[str, str]:
    # Ray tries to phone home unless told not to; a user's own setting wins.
    return {} if "RAY_USAGE_STATS_ENABLED" in os.environ else {"RAY_USAGE_STATS_ENABLED": "0"}


@contextlib.contextmanager
def _scoped_env(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` for the processes started inside the block, then restore the caller's
    environment exactly (nniray leaves no global setting behind in the user's process)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LocalTrainingService:
    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self._started = False

    # ---------------------------------------------------------------- driver side
    def connect(self, gpu_indices: list[int] | None = None) -> bool:
        """Attach to Ray (see :func:`connect_ray`).  Returns True if this call started Ray."""
        started = connect_ray(self.address, gpu_indices)
        self._started = self._started or started
        self.address = ray.get_runtime_context().gcs_address
        return started

    def teardown(self) -> None:
        if self._started:
            disconnect_ray()
            self._started = False

    def check_fits(self, cfg: dict) -> None:
        """Refuse, before starting, a trial that no node of the cluster can ever hold (instead
        of leaving it WAITING forever)."""
        need = self.placement(cfg)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        if need["num_gpus"] and not any(n["Resources"].get("GPU", 0) >= need["num_gpus"] for n in nodes):
            have = sorted({n["Resources"].get("GPU", 0) for n in nodes})
            raise ConfigError(f"trialGpuNumber: each trial needs {need['num_gpus']:g} GPU but no node of the Ray "
                              f"cluster has that many (GPUs per node: {have}); lower trialGpuNumber, raise "
                              f"maxTrialNumberPerGpu, or attach to a cluster with GPUs (trainingService.rayAddress)")
        if not any(n["Resources"].get("CPU", 0) >= need["num_cpus"] for n in nodes):
            raise ConfigError(f"trainingService.trialCpuNumber: each trial needs {need['num_cpus']:g} CPUs but no "
                              f"node of the Ray cluster has that many")

    @staticmethod
    def ship_by_value(fn: Any) -> None:
        """A trial function from ``__main__`` or a script folder is not importable on workers:
        pickle its module by value."""
        if isinstance(fn, str):
            return
        mod = sys.modules.get(getattr(fn, "__module__", None) or "")
        if mod is None or mod.__name__ == "__main__" or mod.__name__.startswith("nniray."):
            return
        try:
            # Ray pickles with its own vendored copy of cloudpickle: register there.
            cloudpickle.register_pickle_by_value(mod)
        except (ValueError, TypeError):
            pass

    # ---------------------------------------------------------------- controller side
    @staticmethod
    def placement(cfg: dict) -> dict:
        return runner_resources(cfg)

    @staticmethod
    def start_runner(experiment_id: str, slot: int, cfg: dict, trial_function: Any) -> Any:
        name = names.runner(experiment_id, slot)
        return RunnerActor.options(**runner_actor_options(cfg, name)).remote(
            names.controller(experiment_id), names.NAMESPACE, slot, experiment_id, trial_function)

    @staticmethod
    def find_runner(experiment_id: str, slot: int) -> Any | None:
        return find_actor(names.runner(experiment_id, slot))

    @staticmethod
    def retire_runner(handle: Any) -> None:
        kill_actor(handle)
