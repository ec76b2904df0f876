"""SMACTuner: SMAC3 (random-forest SMBO) through the ``smac`` 2.x package (NNI's ``SMAC``).

classArgs: ``optimize_mode='maximize'``, ``config_dedup=False``, plus ``seed``.
Search space: choice (any plain options), randint (ordered, as SMAC respects order), uniform,
quniform, loguniform; no nesting (NNI's support matrix).

How it uses SMAC (choices in docs/decisions/tuners-bo.md):

* Every suggestion builds a fresh ``HyperparameterOptimizationFacade`` with the tuner's seed,
  adds every finished trial to its run history and marks running ones as running, then takes
  the next configuration from SMAC's config selector (initial design first, then the
  random-forest EI maximiser with SMAC's interleaved random configs).  The intensifier is
  bypassed: with one deterministic call per config it only adds O(n²) bookkeeping.  The
  suggestion is therefore a function of (seed, results, running trials) only, so
  ``import_data`` on resume gives exactly the suggestion the live run would have given, and
  running trials are never suggested again.
* Deterministic scenario, one call per config (``max_config_calls=1``), 10 Sobol initial
  configs, the model retrained after every result (``retrain_after=1``; SMAC's default 8
  would reuse a stale model for 8 sequential suggestions).
* The random forest is SMAC's own with ``n_jobs=1`` and ``max_leaf_nodes=None``: smac 2.4
  passes ``max_leaf_nodes=2**20`` to scikit-learn, which then takes ~0.5 s *per tree*, and
  ``n_jobs=-1`` thread overhead on a 2-core box dominated the rest.  Acquisition maximisation
  uses 1000 random challengers + SMAC's local search (default 10000).
* Quiet: SMAC's loggers are silenced during a call and its output goes to a private temp
  directory removed when the tuner is garbage collected.
* ``config_dedup=True`` additionally never returns a parameter dict that was already
  generated (a quantised float can map two SMAC configs to one dict); SMAC itself never
  re-proposes a configuration it has seen.
"""
from __future__ import annotations

import contextlib
import json
import math
import logging
import shutil
import tempfile
import weakref
from typing import Any

import numpy as np

from nniray.search_space import Param, SearchSpace, SearchSpaceError, check_supported, parse
from nniray.tuner import NoMoreTrialError, Tuner
from nniray.utils import MetricError, OptimizeMode, extract_scalar_reward, parse_optimize_mode

from ._bo_base import check_bool, check_seed

logger = logging.getLogger(__name__)

SMAC_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform")
N_INITIAL = 10
CHALLENGERS = 1000
MAX_ORDINAL = 1000  # quniform grids up to this size become ordinal hyperparameters


@contextlib.contextmanager
def _quiet():
    names = ["smac", "ConfigSpace"]
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    for lg, _ in saved:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lvl in saved:
            lg.setLevel(lvl)


def build_configspace(space: SearchSpace, seed: int):
    """ConfigSpace for a flat space; choices are categorical over option indices ("0", "1", ...)."""
    from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer, OrdinalHyperparameter

    cs = ConfigurationSpace(seed=seed)
    hps = []
    for p in space.params:
        t, v = p.type, p.value
        if t == "choice":
            hps.append(Categorical(p.key, [str(i) for i in range(len(v))]))
        elif t == "randint":
            hps.append(Integer(p.key, (int(v[0]), int(v[1]) - 1)))
        elif t == "quniform" and len(quniform_grid(p)) <= MAX_ORDINAL:
            # Exact legal values, in order: a Float would be quantised after SMAC chose it, and
            # the quantised config would never match SMAC's own (it re-proposed it forever).
            hps.append(OrdinalHyperparameter(p.key, quniform_grid(p)))
        elif t in ("uniform", "quniform"):
            hps.append(Float(p.key, (float(v[0]), float(v[1]))))
        elif t == "loguniform":
            hps.append(Float(p.key, (float(v[0]), float(v[1])), log=True))
        else:  # refused by check_supported already
            raise SearchSpaceError(f"SMAC does not support _type {t!r} (key {p.key!r})")
    cs.add(hps)
    return cs


def quniform_grid(p: Param) -> list[float]:
    """Every value NNI's quniform formula can give, ascending."""
    lo, hi, q = float(p.value[0]), float(p.value[1]), float(p.value[2])
    ks = np.arange(math.ceil(lo / q), math.floor(hi / q) + 1) if hi / q - lo / q < 10 * MAX_ORDINAL else []
    return sorted({p.quantize(lo), p.quantize(hi), *(p.quantize(k * q) for k in ks)})


def _to_flat(p: Param, x: Any) -> Any:
    if p.type == "choice":
        return int(x)
    if p.type == "randint":
        return int(x)
    return p.quantize(float(x))


def _to_config_value(p: Param, x: Any) -> Any:
    if p.type == "choice":
        return str(int(x))
    if p.type == "quniform":
        grid = quniform_grid(p)
        if len(grid) <= MAX_ORDINAL:
            return grid[int(np.argmin(np.abs(np.asarray(grid) - float(x))))]
    if p.type == "randint":
        return int(min(max(int(x), int(p.value[0])), int(p.value[1]) - 1))
    return float(min(max(float(x), float(p.value[0])), float(p.value[1])))


class SMACTuner(Tuner):
    """SMAC3 random-forest Bayesian optimisation; see the module docstring."""

    algorithm_name = "SMAC"

    def __init__(self, optimize_mode: str = "maximize", config_dedup: bool = False, seed: int | None = None):
        import smac  # noqa: F401  (fail at construction, with the package name, if missing)

        self.optimize_mode = parse_optimize_mode(optimize_mode)
        self.config_dedup = check_bool("config_dedup", config_dedup)
        self.seed = check_seed(seed) % (2 ** 31)
        self.space: SearchSpace | None = None
        self._observed: list[tuple[dict, float]] = []
        self._pending: dict[int, dict] = {}
        self._generated: set[str] = set()
        self._tmp = tempfile.mkdtemp(prefix="nniray-smac-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmp, True)

    # -- Tuner API -----------------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        space = parse(search_space)
        check_supported(space, self.algorithm_name, SMAC_TYPES, nested=False)
        self.space = space
        self._pending.clear()
        kept = []
        for params, y in self._observed:
            try:
                space.flatten(params)
            except (KeyError, SearchSpaceError, TypeError, ValueError):
                continue
            kept.append((params, y))
        self._observed = kept

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict:
        if self.space is None:
            raise RuntimeError("SMAC: update_search_space must be called before generate_parameters")
        if not self.space.params:
            return {}
        with _quiet():
            params = self._ask()
        self._pending[parameter_id] = params
        self._generated.add(_key(params))
        return params

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        y = extract_scalar_reward(value)
        self._pending.pop(parameter_id, None)
        if self.space is not None:
            self.space.flatten(parameters)  # refuse parameters that do not fit, now
        self._observed.append((parameters, y))
        self._generated.add(_key(parameters))

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        self._pending.pop(parameter_id, None)

    def import_data(self, data: list[dict]) -> None:
        for i, rec in enumerate(data):
            try:
                y = extract_scalar_reward(rec["value"])
                if self.space is not None:
                    self.space.flatten(rec["parameter"])
            except (KeyError, TypeError, MetricError, SearchSpaceError, ValueError) as e:
                logger.warning("SMAC.import_data: record %d skipped: %s", i, e)
                continue
            self._observed.append((rec["parameter"], y))
            self._generated.add(_key(rec["parameter"]))

    # -- SMAC ----------------------------------------------------------------------------
    def _config(self, cs, params: dict):
        from ConfigSpace import Configuration

        flat = self.space.flatten(params)
        values = {p.key: _to_config_value(p, flat[p.key]) for p in self.space.params}
        return Configuration(cs, values=values)

    def _decode(self, config) -> dict:
        flat = {p.key: _to_flat(p, config[p.key]) for p in self.space.params}
        return self.space.format(flat)

    def _facade(self):
        from smac import HyperparameterOptimizationFacade as HPO
        from smac import Scenario
        from smac.model.random_forest.random_forest import RandomForest

        cs = build_configspace(self.space, self.seed)
        sc = Scenario(cs, output_directory=self._tmp, deterministic=True, n_trials=2 ** 31 - 1, seed=self.seed)
        model = RandomForest(configspace=cs, log_y=True, n_trees=10, bootstrapping=True, ratio_features=1.0,
                             min_samples_split=2, min_samples_leaf=1, max_depth=2 ** 20,
                             max_leaf_nodes=None, n_jobs=1, seed=self.seed)
        facade = HPO(sc, target_function=None, model=model, logging_level=False, overwrite=True,
                     initial_design=HPO.get_initial_design(sc, n_configs=N_INITIAL),
                     intensifier=HPO.get_intensifier(sc, max_config_calls=1),
                     config_selector=HPO.get_config_selector(sc, retrain_after=1),
                     acquisition_maximizer=HPO.get_acquisition_maximizer(sc, challengers=CHALLENGERS))
        return cs, facade

    def _ask(self) -> dict:
        from smac.runhistory import StatusType, TrialInfo

        cs, facade = self._facade()
        sign = -1.0 if self.optimize_mode is OptimizeMode.Maximize else 1.0
        rh = facade.runhistory
        # Straight into the run history: going through tell() and the intensifier costs O(n²)
        # Configuration comparisons (seconds at a few hundred results), and with one
        # deterministic call per config the intensifier has nothing to add.
        # RunHistory.add recomputes the objective bounds over all trials each time (O(n²) in
        # total); skip that while bulk-loading and compute them once at the end.
        rh._update_objective_bounds = lambda: None
        for params, y in self._observed:
            rh.add(config=self._config(cs, params), cost=sign * y, seed=self.seed, status=StatusType.SUCCESS)
        del rh._update_objective_bounds
        rh._update_objective_bounds()
        for params in self._pending.values():
            rh.add_running_trial(TrialInfo(config=self._config(cs, params), seed=self.seed))
        from smac.main.exceptions import ConfigurationSpaceExhaustedException

        selector = iter(facade._config_selector)
        rng = np.random.default_rng([self.seed, len(self._observed), len(self._pending)])
        for _ in range(20):
            try:
                config = next(selector)
            except (ConfigurationSpaceExhaustedException, StopIteration):
                # Every configuration of a finite space has been tried (or is running): the
                # experiment ends as with GridSearch, instead of failing with smac's exception.
                raise NoMoreTrialError("SMAC: every configuration of the (finite) search space has been tried") from None
            params = self._decode(config)
            if not self.config_dedup or _key(params) not in self._generated:
                return params
        for _ in range(1000):  # SMAC keeps proposing seen dicts: fall back to unseen random ones
            params = self.space.sample(rng)
            if _key(params) not in self._generated:
                return params
        return params


def _key(params: Any) -> str:
    return json.dumps(params, sort_keys=True, default=str)
