"""What happens to an experiment, as typed events the :class:`~nniray.runtime.core.ExperimentCore`
consumes.  The controller shell turns each Ray reply into one of these; the converters here
(:func:`metric_event`, :func:`outcome_event`) are where untrusted input from trials is checked,
so that nothing a trial writes can reach the core malformed (a bad record becomes
:class:`MetricRejected`, which fails that trial with the reason)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from nniray.runtime.status import MetricType, TrialStatus
from nniray.utils import MetricError, extract_scalar_reward


# ---------------------------------------------------------------------------------------- lifecycle
@dataclass(frozen=True)
class Started:
    """Algorithms are set up and recovery is done: run.  ``resume`` restarts a finished experiment."""
    resume: bool = False


@dataclass(frozen=True)
class Tick:
    """Time passed (the shell sends one every half second): durations, limits, time-outs."""


@dataclass(frozen=True)
class Failed:
    """Something outside the trials failed for good (algorithm set-up, the algorithm, the store):
    the experiment goes to ERROR with ``reason``."""
    reason: str


@dataclass(frozen=True)
class StopRequested:
    """The user (CLI, REST, ``Experiment.stop``) asked the experiment to stop."""


@dataclass(frozen=True)
class StopDeadline:
    """The trials asked to stop did not end in time: they are recorded USER_CANCELED anyway."""


@dataclass(frozen=True)
class UpdateRequested:
    """A run-time change, already checked by the shell (``searchSpace``: the algorithm took it)."""
    field: str
    value: Any


@dataclass(frozen=True)
class KillRequested:
    trial_id: str
    status: TrialStatus = TrialStatus.USER_CANCELED
    message: str = "killed by user"


# ---------------------------------------------------------------------------------------- runners
@dataclass(frozen=True)
class RunnerReady:
    slot: int


@dataclass(frozen=True)
class RunnerLost:
    """A runner failed to start or died while idle."""
    slot: int


class Outcome(str, Enum):
    FINISHED = "FINISHED"          # the runner ran the trial to an end; ``status`` says which
    RUNNER_LOST = "RUNNER_LOST"    # the runner (or its node) died: the trial may be retried
    NOT_FOUND = "NOT_FOUND"        # after a restart: the runner never had this trial


@dataclass(frozen=True)
class TrialEnded:
    trial_id: str
    slot: int
    outcome: Outcome
    status: TrialStatus = TrialStatus.FAILED
    message: str = ""
    end_time: float | None = None
    # The runner cannot run another trial (a function trial stuck in native code).
    retire_runner: bool = False
    attempt: int | None = None  # which attempt's run call this ends (None: the current one)


@dataclass(frozen=True)
class RecoveredTrial:
    """After a controller restart: a trial the store has RUNNING whose runner still has it."""
    trial_id: str
    sequence_id: int
    hyper_params: dict
    slot: int
    attempt: int
    start_time: float
    history: tuple = ()


@dataclass(frozen=True)
class RecoveredRunner:
    """After a controller restart: an idle runner of this experiment that is still alive."""
    slot: int


# ---------------------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class MetricArrived:
    """A metric the store recorded for the first time (the shell writes, the store drops
    re-sent duplicates, then the core hears of it: write before act)."""
    trial_id: str
    type: MetricType
    sequence: int
    value: Any
    parameter_id: Any = None
    attempt: int | None = None
    timestamp: float | None = None


@dataclass(frozen=True)
class MetricRejected:
    """A malformed metric record: its trial fails with ``reason``."""
    trial_id: str
    reason: str


@dataclass(frozen=True)
class AssessorVerdict:
    trial_id: str
    good: bool


# ---------------------------------------------------------------------------------------- algorithm
@dataclass(frozen=True)
class Job:
    """One set of parameters to run: NNI's ``hyper_params`` (parameter_id, parameter_source,
    parameters)."""
    hyper_params: dict


@dataclass(frozen=True)
class AlgorithmAnswered:
    """The algorithm's answer to a request (``request_id``) or, unprompted (an advisor may send
    trials after a metric), with ``request_id`` None."""
    jobs: tuple = ()
    no_more: bool = False
    # An empty answer while nothing runs means "no more" (tuners: nothing could change their
    # mind); advisors say NO explicitly.
    empty_means_no_more: bool = True
    stop: tuple = ()  # trial ids the algorithm wants killed
    request_id: int | None = None


Event = (Started | Tick | Failed | StopRequested | StopDeadline | UpdateRequested | KillRequested | RunnerReady
         | RunnerLost | TrialEnded | RecoveredTrial | RecoveredRunner | MetricArrived | MetricRejected
         | AssessorVerdict | AlgorithmAnswered)


# ---------------------------------------------------------------------------------------- converters
def metric_event(raw: Any) -> MetricArrived | MetricRejected | None:
    """Check one metric record from a runner.  None if it cannot even be tied to a trial (it is
    dropped: there is nothing to fail).  A FINAL must be a finite number or a dict with a
    numeric ``default`` (an integer beyond float range is refused here, not in the middle of
    the controller); any value must be JSON."""
    if not isinstance(raw, dict) or not isinstance(raw.get("trial_id"), str):
        return None
    tid = raw["trial_id"]
    try:
        mtype = MetricType(raw.get("type"))
    except ValueError:
        return MetricRejected(tid, f"metric record with unknown type {raw.get('type')!r} "
                                   f"(expected PERIODICAL or FINAL)")
    seq = raw.get("sequence")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return MetricRejected(tid, f"metric record with a bad sequence {seq!r}")
    attempt = raw.get("attempt")  # absent: a runner that does not tag attempts (the current one)
    if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int)):
        return MetricRejected(tid, f"metric record with a bad attempt {attempt!r}")
    value = raw.get("value")
    try:
        # Stored as JSON and served to clients as JSON: refuse what JSON cannot carry
        # (NaN/inf would be written as the non-JSON ``NaN``/``Infinity``).
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        return MetricRejected(tid, f"{mtype.value} result {_clip(value)} is not valid JSON: {e}")
    if mtype is MetricType.FINAL:
        try:
            extract_scalar_reward(value)
        except MetricError as e:
            return MetricRejected(tid, f"final result rejected: {e}")
        except (OverflowError, ValueError, TypeError) as e:  # e.g. an int with 400 digits
            return MetricRejected(tid, f"final result rejected: {_clip(value)} is not a number a float can "
                                       f"hold ({type(e).__name__}): report a finite float")
    ts = raw.get("timestamp")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)):
        ts = None
    return MetricArrived(tid, mtype, seq, value, raw.get("parameter_id"), attempt, ts)


def outcome_event(raw: Any, slot: int, attempt: int | None = None) -> TrialEnded | None:
    """A runner's ``run``/``wait`` reply as an event (None if it names no trial)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("trial_id"), str):
        return None
    tid = raw["trial_id"]
    status = raw.get("status")
    if status == "UNKNOWN":
        return TrialEnded(tid, slot, Outcome.NOT_FOUND, TrialStatus.FAILED, raw.get("message") or "",
                          attempt=attempt)
    if status == "RUNNER_DIED":
        return TrialEnded(tid, slot, Outcome.RUNNER_LOST, TrialStatus.FAILED, raw.get("message") or "",
                          attempt=attempt)
    message = str(raw.get("message") or "")
    try:
        st = TrialStatus(status)
    except ValueError:
        st, message = TrialStatus.FAILED, (message + "; " if message else "") + f"runner reported status {status!r}"
    if not st.final:
        st, message = TrialStatus.FAILED, (message + "; " if message else "") + f"runner reported status {status!r}"
    end = raw.get("end_time")
    end = float(end) if isinstance(end, (int, float)) and not isinstance(end, bool) else None
    return TrialEnded(tid, slot, Outcome.FINISHED, st, message, end, bool(raw.get("retire_runner")), attempt)


def _clip(value: Any, n: int = 60) -> str:
    try:
        s = repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still reported
        s = f"<{type(value).__name__}>"
    return s if len(s) <= n else s[:n] + "..."
