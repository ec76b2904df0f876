"""BatchTuner: run a user-given list of parameter sets, in order, then stop.

The search space must be exactly one key of ``_type: choice`` whose ``_value`` lists full
parameter dicts, each sent to a trial as is.  NNI documents the key as ``combine_params`` but
takes whatever the single key is named, and so does nniray.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, Mapping

from nniray.search_space import SearchSpaceError
from nniray.tuner import NoMoreTrialError, Tuner

logger = logging.getLogger(__name__)

_FORMAT = ('{"combine_params": {"_type": "choice", "_value": [{...parameters of trial 1...}, '
           '{...parameters of trial 2...}]}}')


def parse_batch_space(search_space: Any) -> list[dict]:
    """The list of parameter dicts, or a SearchSpaceError that shows the required format."""
    if not isinstance(search_space, Mapping):
        raise SearchSpaceError(f"BatchTuner needs a search space of the form {_FORMAT}, got {search_space!r}")
    if len(search_space) != 1:
        raise SearchSpaceError(f"BatchTuner needs exactly one top-level key (documented as 'combine_params'; got keys "
                               f"{sorted(map(str, search_space))}); format: {_FORMAT}")
    key = next(iter(search_space))
    spec = search_space[key]
    if not isinstance(spec, Mapping) or spec.get("_type") != "choice" or "_value" not in spec:
        raise SearchSpaceError(f"BatchTuner: {key!r} must be {{\"_type\": \"choice\", \"_value\": [...]}}, "
                               f"got {spec!r}")
    values = spec["_value"]
    if not isinstance(values, (list, tuple)) or not values:
        raise SearchSpaceError(f"BatchTuner: '{key}._value' must be a non-empty list of parameter dicts")
    for i, v in enumerate(values):
        if not isinstance(v, Mapping):
            raise SearchSpaceError(f"BatchTuner: '{key}._value[{i}]' must be a dict of parameters "
                                   f"(one trial's full parameter set), got {v!r}")
    return [dict(v) for v in values]


class BatchTuner(Tuner):
    """Sends each dict of ``combine_params`` once, in order, then raises ``NoMoreTrialError``.

    No classArgs (``seed`` is accepted for uniformity with the other tuners and unused).
    """

    algorithm_name = "BatchTuner"

    def __init__(self, seed: int | None = None) -> None:
        self._values: list[dict] = []
        self._next = 0

    def update_search_space(self, search_space: dict) -> None:
        """A new list replaces the old one and starts again from its first entry."""
        self._values = parse_batch_space(search_space)
        self._next = 0

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self._next >= len(self._values):
            raise NoMoreTrialError("BatchTuner: every parameter set in combine_params has been sent")
        params = copy.deepcopy(self._values[self._next])
        self._next += 1
        return params

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        """Results do not change the list."""

    def import_data(self, data: list[dict]) -> None:
        """Drop the imported (already run) parameter sets from what is left to send (resume)."""
        remaining = self._values[self._next:]
        n = 0
        for entry in data or []:
            params = entry.get("parameter") if isinstance(entry, Mapping) else None
            if params in remaining:
                remaining.remove(params)
                n += 1
            else:
                logger.warning("BatchTuner: imported parameters %r are not among those left to send", params)
        self._values = self._values[:self._next] + remaining
        logger.info("BatchTuner: %d imported trials removed from the remaining list", n)
