"""NNI's Tuner interface (``nni.tuner.Tuner``): a user's own tuner subclasses this unchanged.

Call order (what the tuner actor does): ``update_search_space`` first, then
``generate_parameters``/``generate_multiple_parameters`` as trials are needed,
``receive_trial_result`` when a trial reports a final result, ``trial_end`` when it ends.
``import_data`` is how resume rebuilds a tuner from the store.  Algorithms are plain Python;
they never import Ray.
"""
from __future__ import annotations

from typing import Any

from nniray.errors import NniRayError


class NoMoreTrialError(NniRayError):
    """Raised by a tuner when the search space is exhausted (GridSearch, BatchTuner)."""


class Recoverable:
    def load_checkpoint(self) -> None:  # NNI compat: internal, optional
        return None

    def save_checkpoint(self) -> None:
        return None


class Tuner(Recoverable):
    """Base class of every tuner.  Override ``update_search_space``, ``generate_parameters``
    and ``receive_trial_result``; the rest have working defaults."""

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> Any:
        raise NotImplementedError("Tuner subclasses must implement generate_parameters()")

    def generate_multiple_parameters(self, parameter_id_list: list[int], **kwargs: Any) -> list[Any]:
        """Default: one ``generate_parameters`` per id; stops early at ``NoMoreTrialError``.
        An empty list means no more trials."""
        result = []
        for pid in parameter_id_list:
            try:
                result.append(self.generate_parameters(pid, **kwargs))
            except NoMoreTrialError:
                break
        return result

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        raise NotImplementedError("Tuner subclasses must implement receive_trial_result()")

    def receive_customized_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        """Results of user-customized trials: ignored by default, as in NNI."""

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        """Called when a trial ends; ``success`` is False for failed or killed trials."""

    def update_search_space(self, search_space: dict) -> None:
        raise NotImplementedError("Tuner subclasses must implement update_search_space()")

    def import_data(self, data: list[dict]) -> None:
        """``data`` is a list of ``{"parameter": ..., "value": ...}`` of finished trials.
        Default: do nothing (a custom tuner may not support it)."""
