"""An experiment's metrics in Ray's metrics system (its Prometheus endpoint and dashboard).

The controller calls one plain method per event; this module owns the metric names, tags and
histogram buckets.  Every series carries the ``experiment`` tag, so one cluster's dashboard
tells several experiments apart.  Ray exports them with its ``ray_`` prefix, e.g.
``ray_nniray_trials{experiment="…",status="RUNNING"}``.

Recording a metric must never fail an experiment: an error in Ray's metrics plumbing is logged
once and the call returns.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

from nniray.storage.trial_store import TrialStatus

log = logging.getLogger("nniray.metrics")

TRIALS = "nniray_trials"
BEST_METRIC = "nniray_best_metric"
TRIAL_DURATION = "nniray_trial_duration_seconds"
SUGGEST_LATENCY = "nniray_tuner_suggest_latency_seconds"
QUEUE_LENGTH = "nniray_controller_queue_length"
TRIALS_FINISHED = "nniray_trials_finished"

# Trials run from under a second (function trials) to days (training jobs).
DURATION_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600]
# A tuner answers in microseconds (random) to seconds (GP / SMAC fitting).
LATENCY_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30]

_lock = threading.Lock()
_objects: dict[str, Any] = {}


def _metric(name: str) -> Any:
    """One Ray metric object per name per process (Ray registers metrics by name)."""
    with _lock:
        if name not in _objects:
            from ray.util import metrics as rm
            tags = ("experiment",)
            if name == TRIALS:
                _objects[name] = rm.Gauge(name, description="Trials of the experiment by status",
                                          tag_keys=("experiment", "status"))
            elif name == BEST_METRIC:
                _objects[name] = rm.Gauge(name, description="Best default final metric so far", tag_keys=tags)
            elif name == QUEUE_LENGTH:
                _objects[name] = rm.Gauge(name, description="Trials waiting for a trial runner in the controller",
                                          tag_keys=tags)
            elif name == TRIAL_DURATION:
                _objects[name] = rm.Histogram(name, description="Wall time of finished trials (seconds)",
                                              boundaries=DURATION_BUCKETS, tag_keys=("experiment", "status"))
            elif name == SUGGEST_LATENCY:
                _objects[name] = rm.Histogram(name, description="Time the tuner took to suggest parameters (seconds)",
                                              boundaries=LATENCY_BUCKETS, tag_keys=tags)
            elif name == TRIALS_FINISHED:
                _objects[name] = rm.Counter(name, description="Trials that reached a final status",
                                            tag_keys=("experiment", "status"))
            else:
                raise KeyError(name)
        return _objects[name]


def _status_text(status: Any) -> str:
    return status.value if isinstance(status, TrialStatus) else str(status)


class ExperimentMetrics:
    """The metrics of one experiment.  Cheap to create; call from the controller's process."""

    def __init__(self, experiment_id: str) -> None:
        self.experiment_id = experiment_id
        self._warned = False

    def _record(self, name: str, action: str, value: float, **tags: str) -> None:
        try:
            metric = _metric(name)
            getattr(metric, action)(value, tags={"experiment": self.experiment_id, **tags})
        except Exception as e:  # metrics are best-effort by design (see the module docstring)
            if not self._warned:
                self._warned = True
                log.warning("could not record Ray metric %s: %s", name, e)

    def trials_by_status(self, counts: Mapping[Any, int]) -> None:
        """Set the per-status trial gauges; statuses absent from ``counts`` are set to 0 so a
        count that drops to nothing shows as 0, not as its last value."""
        given = {_status_text(k): int(v) for k, v in counts.items()}
        for status in TrialStatus:
            self._record(TRIALS, "set", given.get(status.value, 0), status=status.value)

    def best_metric(self, value: float | None) -> None:
        if value is not None:
            self._record(BEST_METRIC, "set", float(value))

    def trial_finished(self, status: Any, duration_s: float | None) -> None:
        """A trial reached a final status after ``duration_s`` seconds of running."""
        text = _status_text(status)
        self._record(TRIALS_FINISHED, "inc", 1.0, status=text)
        if duration_s is not None and duration_s >= 0:
            self._record(TRIAL_DURATION, "observe", float(duration_s), status=text)

    def suggest_latency(self, seconds: float) -> None:
        self._record(SUGGEST_LATENCY, "observe", max(0.0, float(seconds)))

    def queue_length(self, n: int) -> None:
        self._record(QUEUE_LENGTH, "set", float(n))
