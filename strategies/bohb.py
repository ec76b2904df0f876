"""BOHB advisor (NNI's ``BOHB``): Hyperband's budgets with a KDE model choosing configurations.

Brackets follow Hyperband between ``min_budget`` and ``max_budget``
(``s_max = floor(log_eta(max_budget / min_budget))``, round-0 budget ``max_budget * eta^-s``),
cycling ``s_max, …, 0, s_max, …`` for as long as the experiment runs (NNI's behaviour: BOHB
never says "no more trials"; ``maxTrialNumber``/``maxExperimentDuration`` end it).  One bracket
runs at a time; the next opens once the current one has created all its rounds.

Each finished run feeds the model of its budget (``TRIAL_BUDGET``) with loss = -metric
(maximize) or metric (minimize); a run that ended without a final result counts as loss +inf.
A new configuration is drawn from the prior with probability ``random_fraction`` or while no
budget has a model; otherwise ``num_samples`` candidates are drawn from the good KDE of the
largest budget that has a model (bandwidth widened by ``bandwidth_factor``) and the one with
the largest ``l(x)/g(x)`` wins.  See :mod:`nniray.strategies._bohb_kde`.
"""
from __future__ import annotations

import logging
import math
import os
import warnings
from typing import Any

import numpy as np

from nniray.runtime.msg_dispatcher_base import MetricType
from nniray.search_space import SearchSpaceError, parse
from nniray.utils import MetricError, OptimizeMode, extract_scalar_reward

from ._bohb_kde import KDEConfigGenerator, UnitEncoder
from .hyperband import (TRIAL_BUDGET, Bracket, SuccessiveHalvingAdvisor, compute_s_max, decode_value,
                        positive_int)

_logger = logging.getLogger(__name__)


class BOHB(SuccessiveHalvingAdvisor):
    """BOHB advisor.

    Parameters (NNI's classArgs and defaults)
    ----------
    optimize_mode : 'maximize' (default) or 'minimize'
    min_budget : int, default 1
        Smallest ``TRIAL_BUDGET``; positive.
    max_budget : int, default 3
        Largest ``TRIAL_BUDGET``; larger than ``min_budget``.
    eta : int, default 3
        Only ``1/eta`` of a round's configurations advance; at least 2.
    min_points_in_model : int, optional
        Observations of a budget needed before its KDE is built; default (and minimum)
        ``dim + 1``.  The model is built when the budget has ``max(dim+1, min_points_in_model)``
        finished runs.
    top_n_percent : int, default 15
        Percentage (1..99) of a budget's observations that form the good density ``l(x)``.
    num_samples : int, default 64
        Candidates drawn to maximize ``l(x)/g(x)``.
    random_fraction : float, default 0.33
        Fraction of configurations drawn from the prior, without the model.
    bandwidth_factor : float, default 3.0
        Widening of the good KDE when drawing candidates.
    min_bandwidth : float, default 0.001
        Lower bound of every KDE bandwidth.
    config_space : str, optional
        Path to a ConfigSpace ``.pcs`` file ("pcs new" format); replaces the search space.
        Conditions (``child | parent == value``) are honoured: inactive hyperparameters are
        left out of the trial's parameters.
    seed : int, optional
        Seed of every random draw (nniray addition).

    Search space: every type except nested choice (use ``config_space`` with conditions instead).
    """

    advisor_name = "BOHB"

    def __init__(self, optimize_mode: str = "maximize", min_budget: int = 1, max_budget: int = 3, eta: int = 3,
                 min_points_in_model: int | None = None, top_n_percent: int = 15, num_samples: int = 64,
                 random_fraction: float = 0.33, bandwidth_factor: float = 3.0, min_bandwidth: float = 0.001,
                 config_space: str | None = None, seed: int | None = None):
        min_budget = positive_int("min_budget", min_budget)
        max_budget = positive_int("max_budget", max_budget)
        if max_budget <= min_budget:
            raise ValueError(f"max_budget must be larger than min_budget, got max_budget={max_budget}, "
                             f"min_budget={min_budget}")
        eta_ = positive_int("eta", eta, minimum=2)
        super().__init__(optimize_mode, eta_, max_budget, compute_s_max(max_budget / min_budget, eta_), seed)
        self.min_budget, self.max_budget = min_budget, max_budget
        if min_points_in_model is not None:
            min_points_in_model = positive_int("min_points_in_model", min_points_in_model)
        self.min_points_in_model = min_points_in_model
        self.top_n_percent = positive_int("top_n_percent", top_n_percent)
        if not 1 <= self.top_n_percent <= 99:
            raise ValueError(f"top_n_percent must be between 1 and 99, got {top_n_percent!r}")
        self.num_samples = positive_int("num_samples", num_samples)
        self.random_fraction = _number("random_fraction", random_fraction, 0.0, 1.0)
        self.bandwidth_factor = _number("bandwidth_factor", bandwidth_factor, 0.0, math.inf, low_open=True)
        self.min_bandwidth = _number("min_bandwidth", min_bandwidth, 0.0, math.inf, low_open=True)
        self.config_space = config_space
        self._cs = None  # the ConfigSpace object when config_space is given (for its conditions)
        self._int_keys: set[str] = set()
        if config_space is not None:
            self._cs, space_json, self._int_keys = read_pcs(config_space)
            self._fixed_space = space_json
        self.cg: KDEConfigGenerator | None = None
        self.encoder: UnitEncoder | None = None
        self._s_next = self.s_max
        self._reported: set[str] = set()

    # -- search space ---------------------------------------------------------------------------
    def handle_update_search_space(self, data: Any) -> None:
        if self._cs is not None:
            if data:
                _logger.info("BOHB: config_space %s is given, so the search space is ignored", self.config_space)
            data = self._fixed_space
        space = self._check_space(parse(data))
        self.encoder = UnitEncoder(space)
        self.space = space
        self.cg = KDEConfigGenerator(self.encoder, self.min_points_in_model, self.top_n_percent, self.num_samples,
                                     self.random_fraction, self.bandwidth_factor, self.min_bandwidth, self._rng)

    # -- bracket schedule ------------------------------------------------------------------------
    def is_done(self) -> bool:
        return False  # BOHB cycles through its brackets until the experiment's limits stop it

    def _may_open_bracket(self) -> bool:
        return not self.brackets or self.brackets[-1].all_rounds_created

    def _next_s(self) -> int:
        s = self._s_next
        self._s_next = self._s_next - 1 if self._s_next > 0 else self.s_max
        return s

    def _make_config(self, budget: int) -> dict:
        vector = self.cg.propose()
        if vector is None:
            params = self.space.sample(self._rng)
        else:
            params = self.space.format(self.encoder.decode(vector))
        return self._finish_params(params)

    def _finish_params(self, params: dict) -> dict:
        """ConfigSpace integers as int, and inactive (conditional) hyperparameters left out."""
        for key in self._int_keys:
            if key in params:
                params[key] = int(round(params[key]))
        if self._cs is not None:
            params = _active_only(self._cs, params)
        return params

    # -- model updates ---------------------------------------------------------------------------
    def _on_metric(self, bracket: Bracket, i: int, pid: str, mtype: str, value: float) -> None:
        if mtype != MetricType.FINAL or pid in self._reported:
            return
        self._reported.add(pid)
        loss = -value if self.optimize_mode is OptimizeMode.Maximize else value
        self._feed(bracket.rounds[i].configs[pid], loss)

    def _on_trial_end(self, bracket: Bracket, i: int, pid: str, event: Any) -> None:
        if pid not in self._reported:  # failed, killed, or ended without a final result
            self._reported.add(pid)
            self._feed(bracket.rounds[i].configs[pid], math.inf)

    def _feed(self, params: dict, loss: float) -> None:
        budget = params.get(TRIAL_BUDGET, self.max_budget)
        vector = self._vector_of(params)
        if vector is not None:
            self.cg.new_result(vector, loss, budget)

    def _vector_of(self, params: dict) -> np.ndarray | None:
        plain = {k: v for k, v in params.items() if k != TRIAL_BUDGET}
        if self._cs is not None:
            # Inactive conditional hyperparameters get their default, so every vector is complete.
            for hp in self._cs.values():
                plain.setdefault(hp.name, hp.default_value)
        try:
            return self.encoder.encode_params(plain)
        except (SearchSpaceError, KeyError, ValueError, TypeError) as e:
            _logger.warning("BOHB: parameters %r do not fit the search space (%s); not used by the model", params, e)
            return None

    def handle_import_data(self, data: list) -> None:
        """Feed finished trials ``[{parameter, value}]`` to the model; the budget is the
        parameters' ``TRIAL_BUDGET`` (``max_budget`` when absent)."""
        if self.cg is None:
            raise RuntimeError("BOHB.handle_import_data called before handle_initialize (no search space)")
        for n, record in enumerate(data):
            if not isinstance(record, dict) or "parameter" not in record or "value" not in record:
                raise ValueError(f"import data record {n} must be {{'parameter': ..., 'value': ...}}, got {record!r}")
            value = decode_value(record["value"])
            if value is None or value == "":
                continue  # a trial without a result carries nothing to learn
            try:
                metric = extract_scalar_reward(value)
            except MetricError as e:
                _logger.warning("BOHB: import data record %d skipped: %s", n, e)
                continue
            loss = -metric if self.optimize_mode is OptimizeMode.Maximize else metric
            self._feed(dict(record["parameter"]), loss)


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------

def _number(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value)) and (low < float(value) if low_open else low <= float(value)) \
        and float(value) <= high
    if not ok:
        rng = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise ValueError(f"{name} must be a number in {rng}, got {value!r}")
    return float(value)


def read_pcs(path: str) -> tuple[Any, dict, set[str]]:
    """A ConfigSpace "pcs new" file → (ConfigurationSpace, nniray search space, integer keys)."""
    if not isinstance(path, str) or not os.path.isfile(path):
        raise ValueError(f"config_space must be the path of a ConfigSpace .pcs file (pcs new format), "
                         f"got {path!r}: file not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ConfigSpace.read_and_write import pcs_new
        with open(path) as fh:
            try:
                cs = pcs_new.read(fh)
            except Exception as e:  # the parser's own message says which line
                raise ValueError(f"config_space {path!r} is not a valid pcs (new format) file: {e}") from None
    if list(cs.forbidden_clauses):
        raise ValueError(f"config_space {path!r}: forbidden clauses are not supported by nniray's BOHB; remove them")
    space: dict[str, dict] = {}
    int_keys: set[str] = set()
    for hp in cs.values():
        kind = type(hp).__name__
        if kind == "CategoricalHyperparameter":
            space[hp.name] = {"_type": "choice", "_value": list(hp.choices)}
        elif kind == "OrdinalHyperparameter":
            space[hp.name] = {"_type": "choice", "_value": list(hp.sequence)}
        elif kind == "Constant":
            space[hp.name] = {"_type": "choice", "_value": [hp.value]}
        elif kind == "UniformFloatHyperparameter":
            space[hp.name] = {"_type": "loguniform" if hp.log else "uniform", "_value": [hp.lower, hp.upper]}
        elif kind == "UniformIntegerHyperparameter":
            if hp.log:
                space[hp.name] = {"_type": "qloguniform", "_value": [hp.lower, hp.upper, 1]}
                int_keys.add(hp.name)
            else:
                space[hp.name] = {"_type": "randint", "_value": [hp.lower, hp.upper + 1]}
        else:
            raise ValueError(f"config_space {path!r}: hyperparameter {hp.name!r} of type {kind} is not supported; "
                             f"use categorical, ordinal, real or integer")
    return cs, space, int_keys


def _active_only(cs: Any, params: dict) -> dict:
    """``params`` without the hyperparameters that the ConfigSpace's conditions switch off."""
    from ConfigSpace.util import deactivate_inactive_hyperparameters
    active = dict(deactivate_inactive_hyperparameters(configuration=dict(params), configuration_space=cs))
    return {k: v for k, v in params.items() if k in active}
