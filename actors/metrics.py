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
import time
from typing import Any, Awaitable, Mapping, TypeVar

from nniray.storage.trial_store import OptimizeMode, TrialStatus

T = TypeVar("T")

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
    # any str enum of statuses (the store's or the runtime's) or plain text
    return str(getattr(status, "value", status))


class ExperimentMetrics:
    """The metrics of one experiment.  Cheap to create; call from the controller's process."""

    # The gauges read from the store at most this often (a GROUP BY and a best-trial lookup).
    REFRESH_SECONDS = 2.0

    def __init__(self, experiment_id: str, optimize_mode: str | None = None) -> None:
        self.experiment_id = experiment_id
        self.mode = OptimizeMode.MINIMIZE if str(optimize_mode).lower() == "minimize" else OptimizeMode.MAXIMIZE
        self._warned = False
        self._refreshed = float("-inf")

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

    # -- what the controller calls -----------------------------------------------------------------
    def refresh(self, store: Any, queue_length: int, force: bool = False) -> None:
        """From the controller's tick: the queue length now, and (at most every
        REFRESH_SECONDS, or now with ``force``: the experiment's end) trials by status and
        the best metric from the store's read port."""
        self.queue_length(queue_length)
        now = time.monotonic()
        if not force and now - self._refreshed < self.REFRESH_SECONDS:
            return
        self._refreshed = now
        try:
            self.trials_by_status(store.counts_by_status())
            best = store.best_trial(self.mode)
            self.best_metric(None if best is None else best.final_value)
        except Exception as e:  # a busy or closing store: the next tick tries again
            log.debug("metrics refresh skipped: %s", e)

    def trial_ended(self, store: Any, trial_id: str, status: Any) -> None:
        """A trial's end, with its run time read from the store (the controller writes a trial's
        end before it acts on it, so the row is complete here)."""
        duration = None
        try:
            record = store.trial(trial_id)
            duration = None if record is None else record.duration
        except Exception as e:
            log.debug("no duration for %s: %s", trial_id, e)
        self.trial_finished(status, duration)

    async def timed_suggest(self, answer: Awaitable[T]) -> T:
        """Await the tuner's answer to a parameter request, recording how long it took."""
        start = time.perf_counter()
        try:
            return await answer
        finally:
            self.suggest_latency(time.perf_counter() - start)
