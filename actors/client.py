"""``RuntimeClient``: the one object through which a driver (``Experiment``, the daemon) talks
to an experiment's runtime.  Everything Ray a driver does is here: connecting (through the
training service), starting or finding the controller actor, calling it, releasing it.
"""
from __future__ import annotations

from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError

from nniray.actors import names
from nniray.actors.controller import ExperimentController
from nniray.actors.handles import head_node_strategy, kill_actor
from nniray.errors import ConfigError, ExperimentError
from nniray.runtime.status import ExperimentStatus
from nniray.training_services.local import LocalTrainingService

ControllerActor = ray.remote(ExperimentController)
CALL_TIMEOUT = 60


def controller_options(exp_id: str) -> dict:
    return dict(name=names.controller(exp_id), namespace=names.NAMESPACE, lifetime="detached",
                max_restarts=-1, max_task_retries=0, num_cpus=0, max_concurrency=1000,
                scheduling_strategy=head_node_strategy())


class RuntimeClient:
    def __init__(self, experiment_id: str, handle: Any, service: LocalTrainingService) -> None:
        self.experiment_id = experiment_id
        self.handle = handle
        self.service = service

    # ------------------------------------------------------------------ start / attach
    @classmethod
    def start(cls, experiment_id: str, exp_dir: str, config: dict, trial_function: Any, resume: bool,
              address: str | None) -> "RuntimeClient":
        """Connect (starting a local Ray if needed), check the trial fits, start the controller;
        raises ConfigError with the controller's reasons if it cannot start."""
        service = LocalTrainingService(address)
        service.connect((config.get("trainingService") or {}).get("gpuIndices"))
        try:
            service.check_fits(config)
            if trial_function is not None:
                service.ship_by_value(trial_function)
            if _find_controller(experiment_id) is not None:
                raise ConfigError(f"experiment {experiment_id} is already running on this Ray cluster")
            handle = ControllerActor.options(**controller_options(experiment_id)).remote(
                experiment_id, exp_dir, config, trial_function, resume)
            status = ray.get(handle.start.remote())
            if status == ExperimentStatus.ERROR.value:
                errors = ray.get(handle.get_status.remote())["errors"]
                kill_actor(handle)
                raise ConfigError("; ".join(errors) or "experiment failed to start")
        except BaseException:
            service.teardown()
            raise
        return cls(experiment_id, handle, service)

    @classmethod
    def attach(cls, experiment_id: str, address: str | None) -> "RuntimeClient":
        service = LocalTrainingService(address or "auto")
        service.connect()
        handle = _find_controller(experiment_id)
        if handle is None:
            raise ExperimentError(f"experiment {experiment_id} is not running on this Ray cluster")
        return cls(experiment_id, handle, service)

    @property
    def address(self) -> str | None:
        return self.service.address

    # ------------------------------------------------------------------ calls
    def _call(self, method: str, *args: Any, timeout: float | None = CALL_TIMEOUT) -> Any:
        try:
            return ray.get(getattr(self.handle, method).remote(*args), timeout=timeout)
        except RayTaskError as err:
            # The controller refused (a bad update): its own message, not Ray's traceback.
            raise ExperimentError(str(err.cause) if getattr(err, "cause", None) else str(err)) from None

    def status(self) -> dict:
        """``{"status", "errors"}`` as the controller has them (in memory: also when the store
        cannot be written)."""
        return self._call("get_status", timeout=30)

    def profile(self) -> dict:
        return self._call("get_profile")

    def update(self, field: str, value: Any) -> dict:
        return self._call("update", field, value)

    def kill_trial(self, trial_id: str) -> bool:
        return self._call("kill_trial", trial_id)

    def import_data(self, data: list[dict]) -> int:
        return self._call("import_data", list(data))

    def add_customized_trial(self, parameters: dict) -> dict:
        return self._call("add_customized_trial", dict(parameters))

    def stop(self, timeout: float = CALL_TIMEOUT) -> str:
        """Stop the experiment and release its actors; returns its final status."""
        try:
            status = ray.get(self.handle.stop.remote(), timeout=timeout)
        finally:
            kill_actor(self.handle)
        return status

    def shutdown(self) -> None:
        """Release the Ray this client started (if it did)."""
        self.service.teardown()


def _find_controller(exp_id: str) -> Any | None:
    try:
        return ray.get_actor(names.controller(exp_id), namespace=names.NAMESPACE)
    except ValueError:
        return None


# Errors a driver treats as "the controller is gone".
GONE = (RayError, GetTimeoutError)
