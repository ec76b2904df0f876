"""Bookkeeping shared by GP, Metis and DNGO: observations, pending trials, seeding.

A suggestion is a pure function of (seed, the ordered observations, the pending points): the
random generator of each suggestion is derived from the seed and the counts, never from how
many suggestions were made before.  That is what makes ``import_data`` (resume) give exactly
the suggestion that the same results received one by one would have given.
"""
from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, Sequence

import numpy as np

from nniray.search_space import SearchSpaceError
from nniray.tuner import Tuner
from nniray.utils import MetricError, OptimizeMode, extract_scalar_reward, parse_optimize_mode

from ._bo_space import UnitSpace, parse_numeric

logger = logging.getLogger(__name__)


_CONTROLLER = None


@contextlib.contextmanager
def single_threaded_blas():
    """Small matrices: BLAS threads only add contention (10-100x slower on a loaded 2-core box)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            yield
            return
        _CONTROLLER = ThreadpoolController()  # scanning the loaded libraries is the slow part
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, minimum: float | None = None, exclusive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    v = float(value)
    if minimum is not None and (v < minimum or (exclusive and v == minimum)):
        raise ValueError(f"{name} must be {'>' if exclusive else '>='} {minimum}, got {value!r}")
    return v


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def check_seed(seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2 ** 63))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


class UnitCubeTuner(Tuner):
    """Base of the numeric model-based tuners.  Subclasses implement :meth:`_suggest`."""

    algorithm_name = "ModelTuner"
    supported_types: Sequence[str] = ()

    def __init__(self, optimize_mode: str = "maximize", seed: int | None = None):
        self.optimize_mode = parse_optimize_mode(optimize_mode)
        self.seed = check_seed(seed)
        self.space: UnitSpace | None = None
        self._observed: list[tuple[dict, float]] = []  # (trial parameters, reported value)
        self._X = np.zeros((0, 0))
        self._loss = np.zeros(0)  # values to minimise
        self._pending: dict[int, np.ndarray] = {}
        self._n_failed = 0

    # -- Tuner API -----------------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        self.space = parse_numeric(search_space, self.algorithm_name, self.supported_types)
        self._pending.clear()
        self._reencode()

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict:
        if self.space is None:
            raise RuntimeError(f"{self.algorithm_name}: update_search_space must be called before generate_parameters")
        if self.space.dim == 0:
            return {}
        rng = np.random.default_rng([self.seed, len(self._loss), len(self._pending), self._n_failed])
        with single_threaded_blas():
            u = np.asarray(self._suggest(rng), dtype=float)
        self._pending[parameter_id] = u
        return self.space.decode(u)

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        y = extract_scalar_reward(value)
        self._pending.pop(parameter_id, None)
        self._add(parameters, y)

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        if self._pending.pop(parameter_id, None) is not None and not success:
            self._n_failed += 1

    def import_data(self, data: list[dict]) -> None:
        """Take finished trials (``{"parameter": ..., "value": ...}``) as if received in order.
        Records whose value is not a usable metric, or whose parameters do not fit the search
        space, are skipped with a warning (as NNI's tuners do)."""
        for i, rec in enumerate(data):
            try:
                y = extract_scalar_reward(rec["value"])
                self._add(rec["parameter"], y)
            except (KeyError, TypeError, MetricError, SearchSpaceError, ValueError) as e:
                logger.warning("%s.import_data: record %d skipped: %s", self.algorithm_name, i, e)

    # -- internals -----------------------------------------------------------------------
    def _add(self, parameters: Any, y: float) -> None:
        if self.space is not None:
            u = np.clip(self.space.encode(parameters), 0.0, 1.0)  # raises if it does not fit
            self._X = np.vstack([self._X.reshape(-1, self.space.dim), u])
            self._loss = np.append(self._loss, -y if self.optimize_mode is OptimizeMode.Maximize else y)
        self._observed.append((parameters, y))

    def _reencode(self) -> None:
        """After a search-space change, model the observations that fit the new space (the
        others are kept aside in case the space changes back)."""
        rows, losses = [], []
        for params, y in self._observed:
            try:
                u = np.clip(self.space.encode(params), 0.0, 1.0)
            except (KeyError, TypeError, SearchSpaceError, ValueError):
                continue
            rows.append(u)
            losses.append(-y if self.optimize_mode is OptimizeMode.Maximize else y)
        self._X = np.array(rows).reshape(-1, self.space.dim)
        self._loss = np.array(losses, dtype=float)

    @property
    def pending_points(self) -> np.ndarray:
        d = self.space.dim if self.space else 0
        return np.array(list(self._pending.values())).reshape(-1, d)

    def _random_point(self, rng: np.random.Generator) -> np.ndarray:
        return self.space.snap(rng.uniform(size=self.space.dim))

    def _suggest(self, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
