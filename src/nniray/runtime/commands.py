"""What the :class:`~nniray.runtime.core.ExperimentCore` asks the shell to do, as typed
commands.  The shell runs them in order.  Write-before-act: every command that acts on the
world (dispatch, stop, tell the algorithm) comes after the :class:`Persist` that records why,
in the same list, so a process that dies between the two leaves a store that explains it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nniray.runtime.status import ExperimentStatus, TrialStatus


# ---------------------------------------------------------------------------------------- store writes
@dataclass(frozen=True)
class TrialCreated:
    trial_id: str
    sequence_id: int
    hyper_params: dict
    slot: int
    start_time: float


@dataclass(frozen=True)
class TrialRestarted:
    """A retry: same trial id and parameters, a new attempt on another runner."""
    trial_id: str
    attempt: int
    slot: int
    start_time: float


@dataclass(frozen=True)
class TrialFinished:
    trial_id: str
    status: TrialStatus
    end_time: float
    message: str = ""


@dataclass(frozen=True)
class TrialNote:
    """A line added to the trial's message (e.g. why its final result was refused)."""
    trial_id: str
    message: str


@dataclass(frozen=True)
class StatusChanged:
    status: ExperimentStatus
    errors: tuple = ()  # set with ERROR: every reason so far


@dataclass(frozen=True)
class MetaChanged:
    key: str
    value: Any


Write = TrialCreated | TrialRestarted | TrialFinished | TrialNote | StatusChanged | MetaChanged


@dataclass(frozen=True)
class Persist:
    """Commit these writes in one transaction before the commands that follow."""
    writes: tuple


# ---------------------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class StartRunner:
    slot: int


@dataclass(frozen=True)
class RetireRunner:
    slot: int


@dataclass(frozen=True)
class DispatchTrial:
    trial_id: str
    sequence_id: int
    hyper_params: dict
    slot: int
    attempt: int


@dataclass(frozen=True)
class StopTrial:
    trial_id: str
    slot: int
    status: TrialStatus
    message: str


@dataclass(frozen=True)
class AckTrial:
    """The outcome is recorded: the runner may forget it."""
    trial_id: str
    slot: int


# ---------------------------------------------------------------------------------------- algorithm
@dataclass(frozen=True)
class RequestTrials:
    """Ask the algorithm for up to ``count`` parameter sets (ids suggested for a tuner)."""
    request_id: int
    count: int
    parameter_ids: tuple


@dataclass(frozen=True)
class ReportFinal:
    trial_id: str
    hyper_params: dict
    value: Any
    sequence: int


@dataclass(frozen=True)
class ReportIntermediate:
    trial_id: str
    hyper_params: dict
    value: Any
    sequence: int
    history: tuple  # every intermediate result of this attempt so far (an assessor's input)


@dataclass(frozen=True)
class ReportTrialEnd:
    trial_id: str
    hyper_params: dict
    status: TrialStatus


@dataclass(frozen=True)
class Finish:
    """The experiment reached ``status`` (DONE, STOPPED, ERROR): release what it holds."""
    status: ExperimentStatus


Command = (Persist | StartRunner | RetireRunner | DispatchTrial | StopTrial | AckTrial | RequestTrials
           | ReportFinal | ReportIntermediate | ReportTrialEnd | Finish)

# Commands that act on the world: each needs a Persist before it in the same list.
ACTS = (DispatchTrial, StopTrial, ReportFinal, ReportTrialEnd)
