"""Typed statuses.  Both are ``str`` enums: the value is exactly NNI's string, so what the store,
the REST API and the CLI show stays NNI's, and ``ExperimentStatus.DONE == "DONE"`` holds."""
from __future__ import annotations

from enum import Enum


class ExperimentStatus(str, Enum):
    INITIALIZED = "INITIALIZED"
    RUNNING = "RUNNING"
    # Limits reached or the algorithm has no more trials; running trials go on.
    NO_MORE_TRIAL = "NO_MORE_TRIAL"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    DONE = "DONE"
    ERROR = "ERROR"
    # Only a read-only ``view`` of a stopped experiment shows this; no controller sets it.
    VIEWED = "VIEWED"

    def __str__(self) -> str:  # f-strings and logs show NNI's word, not the class name
        return self.value

    @property
    def live(self) -> bool:
        """A controller is (or should be) acting on the experiment."""
        return self in _LIVE

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_LIVE = frozenset({ExperimentStatus.INITIALIZED, ExperimentStatus.RUNNING, ExperimentStatus.NO_MORE_TRIAL})
_TERMINAL = frozenset({ExperimentStatus.DONE, ExperimentStatus.STOPPED, ExperimentStatus.ERROR,
                       ExperimentStatus.VIEWED})
# Statuses a resume starts again from.
RESUMABLE = frozenset({ExperimentStatus.STOPPED, ExperimentStatus.DONE, ExperimentStatus.ERROR,
                       ExperimentStatus.NO_MORE_TRIAL, ExperimentStatus.STOPPING})


class TrialStatus(str, Enum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    USER_CANCELED = "USER_CANCELED"
    SYS_CANCELED = "SYS_CANCELED"
    EARLY_STOPPED = "EARLY_STOPPED"

    def __str__(self) -> str:
        return self.value

    @property
    def final(self) -> bool:
        return self not in (TrialStatus.WAITING, TrialStatus.RUNNING)


class MetricType(str, Enum):
    PERIODICAL = "PERIODICAL"
    FINAL = "FINAL"

    def __str__(self) -> str:
        return self.value
