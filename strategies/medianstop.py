"""Medianstop (NNI's ``Medianstop`` assessor): the median stopping rule.

At step S (the trial has reported S intermediate results), the trial is stopped (``Bad``)
if its best value so far is strictly worse than the median, over all *completed* trials
that reported at least S results, of their running average at step S (the mean of their
first S values).  Otherwise, or when no completed trial reached step S, it is ``Good``.

Details, as in NNI's implementation:

* A trial is judged only once it has reported ``start_step`` results
  (``len(history) >= start_step``); before that it is ``Good``.
* The median of an even count is the middle value on the lenient side: the lower one when
  maximizing, the upper one when minimizing.
* A trial's history is kept as ``assess_trial`` sees it; when ``trial_end(id, True)`` is
  called it becomes a completed trial (its running averages are stored).  Failed or killed
  trials (``success=False``, early-stopped ones included) never count.

Values are numbers or dicts with a numeric ``default``.
"""
from __future__ import annotations

import logging
from typing import Any

from nniray.assessor import AssessResult, Assessor
from nniray.utils import OptimizeMode, extract_scalar_reward, parse_optimize_mode

logger = logging.getLogger(__name__)


class MedianstopAssessor(Assessor):
    """Median stopping rule.

    Parameters
    ----------
    optimize_mode : 'maximize' (default) | 'minimize'
        With 'maximize', trials whose best value is below the median are stopped.
    start_step : int, default 0
        Judge a trial only after it has reported this many intermediate results.
    """

    def __init__(self, optimize_mode: str = "maximize", start_step: int = 0) -> None:
        self.optimize_mode = parse_optimize_mode(optimize_mode, default="maximize")
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            raise ValueError(f"start_step must be an integer >= 0, got {start_step!r}")
        self.start_step = start_step
        self._high_better = self.optimize_mode is OptimizeMode.Maximize
        self._running: dict[Any, list[float]] = {}
        self._completed_avg: dict[Any, list[float]] = {}

    def assess_trial(self, trial_job_id: Any, trial_history: list[Any]) -> AssessResult:
        history = [extract_scalar_reward(v) for v in trial_history]
        self._running[trial_job_id] = history
        step = len(history)
        if step == 0 or step < self.start_step:
            return AssessResult.Good
        best = max(history) if self._high_better else min(history)
        avgs = sorted(a[step - 1] for a in self._completed_avg.values() if len(a) >= step)
        if not avgs:
            return AssessResult.Good
        if self._high_better:
            median = avgs[(len(avgs) - 1) // 2]
            return AssessResult.Bad if best < median else AssessResult.Good
        median = avgs[len(avgs) // 2]
        return AssessResult.Bad if best > median else AssessResult.Good

    def trial_end(self, trial_job_id: Any, success: bool) -> None:
        history = self._running.pop(trial_job_id, None)
        if history is None:
            logger.debug("Medianstop: trial_end for %r, which was never assessed", trial_job_id)
            return
        if success:
            total, avgs = 0.0, []
            for i, v in enumerate(history, 1):
                total += v
                avgs.append(total / i)
            self._completed_avg[trial_job_id] = avgs
