"""Curvefitting assessor (NNI's ``CurvefittingAssessor``): stop trials whose predicted final
value is below ``threshold`` times the best final value seen so far.

Only for metrics that increase with training (accuracy, not loss): the curve models are
increasing, saturating functions, so there is no ``optimize_mode``.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from nniray.assessor import AssessResult, Assessor
from nniray.utils import extract_scalar_reward

from .model_factory import CurveModel

_logger = logging.getLogger(__name__)


class CurvefittingAssessor(Assessor):
    """LPA (learn, predict, assess) early stopping.

    Parameters
    ----------
    epoch_num : int, default 20
        Total number of epochs: the position whose value is predicted.  NNI's usage doc calls it
        required; its API default, 20, is kept so a config without it still runs.
    start_step : int, default 6
        Assess only once a trial has reported this many intermediate results.
    threshold : float, default 0.95
        Stop when the prediction is not above ``threshold * best final result so far``.
    gap : int, default 1
        Assess at ``start_step, start_step + gap, start_step + 2*gap, ...`` results.
    seed : int, optional
        Seed of the MCMC sampler (nniray addition), for reproducible decisions.

    A trial is judged Good while no trial has finished successfully (nothing to compare with) and
    whenever the curve fit does not converge (too few curve models agree: prediction None).
    """

    def __init__(self, epoch_num: int = 20, start_step: int = 6, threshold: float = 0.95, gap: int = 1,
                 seed: int | None = None):
        self.target_pos = _int_arg("epoch_num", epoch_num, 1)
        self.start_step = _int_arg("start_step", start_step, 0)
        if self.start_step == 0:
            _logger.warning("Curvefitting: start_step is 0; a positive start_step is recommended")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold) \
                or threshold <= 0:
            raise ValueError(f"threshold must be a positive number (e.g. 0.95), got {threshold!r}")
        self.threshold = float(threshold)
        self.gap = _int_arg("gap", gap, 1)
        self._rng = np.random.default_rng(seed)
        self.completed_best_performance: float | None = None
        self._histories: dict[Any, list[float]] = {}
        self._last_judgment: dict[Any, int] = {}

    def assess_trial(self, trial_job_id: Any, trial_history: list) -> AssessResult:
        history = [extract_scalar_reward(v) for v in trial_history]
        self._histories[trial_job_id] = history
        if self.completed_best_performance is None:
            return AssessResult.Good
        step = len(history)
        if step < self.start_step:
            return AssessResult.Good
        # NNI's rule: judge again only after `gap` more results (robust to skipped calls).
        last = self._last_judgment.get(trial_job_id)
        if last is not None and step - last < self.gap:
            return AssessResult.Good
        self._last_judgment[trial_job_id] = step
        predicted = self.predict(history)
        if predicted is None:
            _logger.info("Curvefitting: trial %s: the fit did not converge, waiting for more results", trial_job_id)
            return AssessResult.Good
        standard = self.completed_best_performance * self.threshold
        _logger.info("Curvefitting: trial %s: predicted %.6g at epoch %d, standard %.6g", trial_job_id, predicted,
                     self.target_pos, standard)
        return AssessResult.Good if predicted > standard else AssessResult.Bad

    def predict(self, history: list[float]) -> float | None:
        """Predicted value at ``epoch_num`` (None when the fit does not converge)."""
        return CurveModel(self.target_pos, self._rng).predict(history)

    def trial_end(self, trial_job_id: Any, success: bool) -> None:
        """A successful trial's last intermediate result updates the best final performance."""
        history = self._histories.pop(trial_job_id, None)
        self._last_judgment.pop(trial_job_id, None)
        if success and history:
            last = history[-1]
            best = self.completed_best_performance
            self.completed_best_performance = last if best is None else max(best, last)


def _int_arg(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) and not (
            isinstance(value, float) and value.is_integer()):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
