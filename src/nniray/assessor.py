"""NNI's Assessor interface (``nni.assessor``): early stopping from intermediate results."""
from __future__ import annotations

from enum import Enum
from typing import Any

from .tuner import Recoverable


class AssessResult(Enum):
    Good = True
    Bad = False


class Assessor(Recoverable):
    """Override ``assess_trial``.  ``trial_history`` is the growing list of intermediate results
    exactly as the trial reported them; return ``AssessResult.Bad`` to stop the trial
    (it then ends as EARLY_STOPPED)."""

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        raise NotImplementedError("Assessor subclasses must implement assess_trial()")

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """Called when a trial ends."""
