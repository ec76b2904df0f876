"""Ray actor classes and their placement options.

Everything with state that must outlive a failure is a *detached, named* actor pinned to the
head node (the experiment directory and its SQLite store live there): the controller and the
algorithm hosts restart in place (``max_restarts=-1``).  Trial runners go anywhere the trial's
resources fit and are not restarted: a runner that dies takes its trial with it (FAILED, or
retried per ``maxTrialRetries``) and the controller starts a new one.

This module does not import the controller (``nniray.actors.client`` wraps it): the
controller imports this one at its top, so there is no import cycle.
"""
from __future__ import annotations

from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from nniray.actors import names
from nniray.actors.algorithm_host import AdvisorHost, AssessorHost, TunerHost
from nniray.actors.trial_runner import TrialRunner


class _RunnerActor(TrialRunner):
    def __init__(self, controller_name: str, namespace: str, index: int, experiment_id: str,
                 trial_function: Any = None) -> None:
        self._controller_name = controller_name
        self._namespace = namespace
        self._controller = None
        self._fn = trial_function
        super().__init__(self._send, index, experiment_id)

    def _send(self, events: list) -> None:
        if self._controller is None:
            self._controller = ray.get_actor(self._controller_name, namespace=self._namespace)
        try:
            ray.get(self._controller.report_events.remote(events), timeout=60)
        except Exception:
            self._controller = None
            raise

    def run(self, spec: dict) -> dict:
        if spec.get("function") is True:
            spec = dict(spec, function=self._fn)
        return super().run(spec)


RunnerActor = ray.remote(_RunnerActor)
_HOSTS = {"tuner": (ray.remote(TunerHost), names.tuner), "assessor": (ray.remote(AssessorHost), names.assessor),
          "advisor": (ray.remote(AdvisorHost), names.advisor)}


def head_node_strategy() -> NodeAffinitySchedulingStrategy | str:
    """Hard affinity to the node this is called on (the head: the driver or the controller)."""
    try:
        return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    except Exception:
        return "DEFAULT"


def controller_options(exp_id: str) -> dict:
    return dict(name=names.controller(exp_id), namespace=names.NAMESPACE, lifetime="detached",
                max_restarts=-1, max_task_retries=0, num_cpus=0, max_concurrency=1000,
                scheduling_strategy=head_node_strategy())


def algorithm_actor(kind: str, exp_id: str, algo_cfg: dict, log_dir: str) -> Any:
    """The named host of the experiment's ``kind`` (tuner, assessor, advisor): the live one
    after a controller restart, else a new one."""
    cls, name_of = _HOSTS[kind]
    return cls.options(name=name_of(exp_id), namespace=names.NAMESPACE, lifetime="detached", get_if_exists=True,
                       max_restarts=-1, max_task_retries=0, num_cpus=0, scheduling_strategy=head_node_strategy(),
                       # NNI's variable for the algorithm's working directory, in its own process only.
                       runtime_env={"env_vars": {"NNI_LOG_DIRECTORY": log_dir}}).remote(algo_cfg, log_dir)


def runner_resources(cfg: dict) -> dict:
    """CPUs/GPUs one trial reserves.  Default CPUs: the cluster's CPUs shared by the
    concurrency, at most 1, so that ``trialConcurrency`` trials always fit (as NNI's local mode)
    and Ray still sets one BLAS thread per trial."""
    ts = cfg.get("trainingService") or {}
    cpus = ts.get("trialCpuNumber")
    if cpus is None:
        total = ray.cluster_resources().get("CPU", 1.0)
        cpus = min(1.0, max(0.01, round(total / max(1, int(cfg["trialConcurrency"])), 2)))
    gpus = cfg.get("trialGpuNumber") or 0
    if gpus:
        gpus = gpus / max(1, int(ts.get("maxTrialNumberPerGpu", 1) or 1))
    return {"num_cpus": cpus, "num_gpus": gpus}


def runner_actor_options(cfg: dict, name: str) -> dict:
    return dict(name=name, namespace=names.NAMESPACE, lifetime="detached", max_restarts=0,
                max_concurrency=8, **runner_resources(cfg))


def find_actor(name: str) -> Any | None:
    try:
        return ray.get_actor(name, namespace=names.NAMESPACE)
    except ValueError:
        return None


def kill_actor(handle: Any) -> None:
    """Kill for good (no restart); an actor that is already gone is fine."""
    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # noqa: BLE001 - already dead, or its node is gone
        pass
