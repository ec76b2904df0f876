"""The read port of an experiment's store: typed, indexed, paged queries.

Every reader (the REST API, the web UI's routes, the CLI, ``Experiment.list_trial_jobs``) goes
through :class:`TrialStore`, so they cannot drift apart and none of them reads a whole table
to answer a page.  :class:`~nniray.storage.sqlite_store.ExperimentStore` implements it over
SQLite; the queries are computed there with indexes, not in Python.
"""
from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

# The runtime's typed statuses: one enum for the core, the store and the API (str enums, equal
# to NNI's words as stored).
from nniray.runtime.status import MetricType, TrialStatus


class SortOrder(str, enum.Enum):
    ASC = "asc"
    DESC = "desc"


class OptimizeMode(str, enum.Enum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class QueryError(ValueError):
    """A query names an unknown column, status or value; the message names the field and the fix."""


# The columns a page may be sorted by, besides ``final.<key>`` and ``param.<name>``.
PLAIN_SORT_COLUMNS = ("sequenceId", "trialJobId", "status", "startTime", "endTime", "duration", "final")
MAX_PAGE_LIMIT = 500
_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")


@dataclass(frozen=True, slots=True)
class TrialQuery:
    """One page request: ``sort`` is a :data:`PLAIN_SORT_COLUMNS` name, ``final.<dict key>`` or
    ``param.<parameter name>``; ``params`` filters on parameter values (equality)."""

    offset: int = 0
    limit: int = 50
    sort: str = "sequenceId"
    order: SortOrder = SortOrder.ASC
    statuses: tuple[TrialStatus, ...] = ()
    search: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.offset, int) or isinstance(self.offset, bool) or self.offset < 0:
            raise QueryError(f"offset must be an integer >= 0, got {self.offset!r}")
        if (not isinstance(self.limit, int) or isinstance(self.limit, bool)
                or not 1 <= self.limit <= MAX_PAGE_LIMIT):
            raise QueryError(f"limit must be an integer from 1 to {MAX_PAGE_LIMIT}, got {self.limit!r}")
        sort_column(self.sort)  # raises on an unknown column
        for name in self.params:
            _check_name(name, "param filter")


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise QueryError(f"{what} name must be 1-200 printable characters, got {name!r}")
    return name


def sort_column(sort: str) -> tuple[str, str | None]:
    """``(kind, key)``: kind is a plain column name, ``final`` with a dict key, or ``param``."""
    if sort in PLAIN_SORT_COLUMNS:
        return sort, None
    for prefix in ("final.", "param."):
        if isinstance(sort, str) and sort.startswith(prefix):
            return prefix[:-1], _check_name(sort[len(prefix):], f"sort {prefix[:-1]}")
    raise QueryError(f"sort must be one of {', '.join(PLAIN_SORT_COLUMNS)}, final.<metric key> or "
                     f"param.<parameter name>; got {sort!r}")


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One stored trial.  Times are seconds since the epoch, as stored."""

    trial_id: str
    sequence_id: int
    parameter_id: str | None
    hyper_params: dict
    status: TrialStatus
    submit_time: float
    start_time: float | None
    end_time: float | None
    message: str | None
    final: Any  # the final metric as reported (number or dict), None before it arrives
    final_value: float | None  # its default value (the number it ranks by)
    intermediate_count: int | None  # None where a bulk read did not count them
    attempt: int
    node: str | None
    customized: bool

    @property
    def parameters(self) -> dict:
        p = self.hyper_params.get("parameters")
        return p if isinstance(p, dict) else {}

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    def as_dict(self) -> dict:
        """The legacy dict shape of ``ExperimentStore.get_trial`` (status as plain text)."""
        return {"trial_id": self.trial_id, "sequence_id": self.sequence_id, "parameter_id": self.parameter_id,
                "hyper_params": self.hyper_params, "status": self.status.value, "submit_time": self.submit_time,
                "start_time": self.start_time, "end_time": self.end_time, "message": self.message,
                "final": self.final, "attempt": self.attempt, "node": self.node, "customized": self.customized}


@dataclass(frozen=True, slots=True)
class MetricRecord:
    id: int
    trial_id: str
    parameter_id: str | None
    type: MetricType
    sequence: int
    value: Any  # decoded JSON; text that is not JSON is returned as the text
    timestamp: float

    def as_dict(self) -> dict:
        return {"id": self.id, "trial_id": self.trial_id, "parameter_id": self.parameter_id,
                "type": self.type.value, "sequence": self.sequence, "value": self.value,
                "timestamp": self.timestamp}


@dataclass(frozen=True, slots=True)
class TrialPage:
    total: int  # matching trials (after the filter), not only this page
    offset: int
    limit: int
    items: list[TrialRecord]
    param_names: list[str]
    final_keys: list[str]


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed after a cursor: trials (rows as they are now) and new metric rows."""

    trial_cursor: int
    metric_cursor: int
    trials: list[TrialRecord]
    metrics: list[MetricRecord]


class TrialStore(ABC):
    """Read queries over one experiment's trials and metrics."""

    @abstractmethod
    def trial(self, trial_id: str) -> TrialRecord | None:
        """One trial by id."""

    @abstractmethod
    def trials_page(self, query: TrialQuery) -> TrialPage:
        """A sorted, filtered page and the total that matches the filter."""

    @abstractmethod
    def iter_trials(self, statuses: Sequence[TrialStatus | str] = (), batch_size: int = 1000,
                    with_counts: bool = False) -> Iterator[TrialRecord]:
        """Every trial in sequence order, read in batches (bounded memory at any size);
        ``with_counts`` also counts each one's intermediate results."""

    @abstractmethod
    def count(self, statuses: Sequence[TrialStatus | str] = ()) -> int:
        """How many trials (with one of ``statuses``, if given)."""

    @abstractmethod
    def counts_by_status(self) -> dict[TrialStatus, int]:
        """Trials per status (only statuses that occur)."""

    @abstractmethod
    def best_trial(self, mode: OptimizeMode = OptimizeMode.MAXIMIZE) -> TrialRecord | None:
        """The trial with the best default final value."""

    @abstractmethod
    def trial_metrics(self, trial_id: str, mtype: MetricType | str | None = None) -> list[MetricRecord]:
        """One trial's metrics in the order they arrived."""

    @abstractmethod
    def finals_of(self, trial_ids: Sequence[str]) -> dict[str, list[MetricRecord]]:
        """The FINAL metric rows of the given trials."""

    @abstractmethod
    def iter_metrics(self, mtype: MetricType | str | None = None, batch_size: int = 5000) -> Iterator[MetricRecord]:
        """Every metric in arrival order, in batches."""

    @abstractmethod
    def metrics_in_sequence_range(self, lo: int, hi: int) -> list[MetricRecord]:
        """Metrics of the trials whose sequence id is in ``[lo, hi]``."""

    @abstractmethod
    def latest_metrics(self) -> list[MetricRecord]:
        """The latest metric of each trial that has one."""

    @abstractmethod
    def metric_series(self, trial_ids: Sequence[str], max_points: int, key: str = "default") -> dict[str, list[tuple[int, float]]]:
        """PERIODICAL ``(sequence, value)`` of each trial, at most ``max_points`` each (evenly thinned)."""

    @abstractmethod
    def finals(self, max_points: int) -> tuple[int, list[TrialRecord]]:
        """``(total, trials)`` of trials with a final value, thinned to at most ``max_points``."""

    @abstractmethod
    def changes_since(self, trial_cursor: int, metric_cursor: int, limit: int = 1000) -> Changes:
        """Trials changed and metrics added after the cursors (for the changes feed)."""

    @abstractmethod
    def iter_completed_results(self, batch_size: int = 2000) -> Iterator[dict]:
        """``{parameter, value, trialJobId}`` of every trial with a final result, in sequence order."""

    @abstractmethod
    def param_names(self) -> list[str]:
        """Every parameter name any trial has."""

    @abstractmethod
    def final_keys(self) -> list[str]:
        """Every key of any dict-valued final metric."""
