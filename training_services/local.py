"""The ``local`` training service: run an experiment on a Ray cluster.

"Local" is NNI's name for "the machine the manager runs on"; here it is whichever Ray cluster
the driver is attached to: a fresh single-node Ray started on this machine (the default), or an
existing cluster given by address (``trainingService.rayAddress``), including a cloud cluster
brought up by Ray's autoscaler.  The SSH / Kubernetes / AML / PAI launchers bring such a cluster
up; the experiment runtime is the same.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import ray

from nniray.actors import names
from nniray.config import ConfigError


class LocalTrainingService:
    def __init__(self, address: str | None = None) -> None:
        self.address = address

    def connect(self, gpu_indices: list[int] | None = None) -> bool:
        """Attach to Ray (starting a local cluster when no address is given and none is
        running in this process).  Returns True if this call started Ray.

        ``gpu_indices`` (``trainingService.gpuIndices``) limits the GPUs a cluster started here
        may hand to trials: Ray only sees the GPUs in ``CUDA_VISIBLE_DEVICES`` when it starts."""
        if ray.is_initialized():
            return False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kwargs: dict[str, Any] = dict(namespace=names.NAMESPACE, log_to_driver=False, logging_level="WARNING",
                                      configure_logging=True)
        # RAY_ADDRESS (set by `ray job submit` and by users) counts as an explicit address.
        address = self.address or os.environ.get("RAY_ADDRESS")
        if address and address != "local":
            ray.init(address=address, **kwargs)
        else:
            # A fresh single-node cluster owned by this driver.  Plain ray.init() would join
            # whatever cluster /tmp/ray/ray_current_cluster names; attaching is explicit
            # (rayAddress: auto | host:port).
            if gpu_indices is not None:
                os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_indices)
            ray.init(address="local", include_dashboard=False, **kwargs)
        self.address = ray.get_runtime_context().gcs_address
        return True

    def check_fits(self, cfg: dict) -> None:
        """Refuse, before starting, a trial that no node of the cluster can ever hold (instead
        of leaving it WAITING forever)."""
        from nniray.actors.handles import runner_resources
        need = runner_resources(cfg)
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
        # Ray pickles with its own vendored copy of cloudpickle: register there.
        from ray import cloudpickle
        mod = sys.modules.get(getattr(fn, "__module__", None) or "")
        if mod is None or mod.__name__ == "__main__" or mod.__name__.startswith("nniray."):
            return
        try:
            cloudpickle.register_pickle_by_value(mod)
        except (ValueError, TypeError):
            pass

    def start_controller(self, exp_id: str, exp_dir: str, cfg: dict, trial_function: Any, resume: bool) -> Any:
        from nniray.actors.handles import ControllerActor, controller_options
        if self.find_controller(exp_id) is not None:
            raise ConfigError(f"experiment {exp_id} is already running on this Ray cluster")
        handle = ControllerActor.options(**controller_options(exp_id)).remote(exp_id, exp_dir, cfg, trial_function,
                                                                              resume)
        status = ray.get(handle.start.remote())
        if status == "ERROR":
            errors = ray.get(handle.get_status.remote())["errors"]
            ray.kill(handle, no_restart=True)
            raise ConfigError("; ".join(errors) or "experiment failed to start")
        return handle

    @staticmethod
    def find_controller(exp_id: str) -> Any | None:
        try:
            return ray.get_actor(names.controller(exp_id), namespace=names.NAMESPACE)
        except ValueError:
            return None
