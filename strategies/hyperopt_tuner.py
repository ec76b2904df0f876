"""NNI's ``HyperoptTuner``: TPE, random search and annealing from the ``hyperopt`` package.

NNI 2.x ran its TPE/Random/Anneal on hyperopt; NNI 3.0 replaced TPE with its own and kept this
class for code that imports it (built-in name ``TPE_legacy``).  nniray's own TPE, Random and
Anneal stay behind the usual names (faster and, on the benchmark problems, better: see
docs/nni-compat.md); this class is hyperopt itself, driven ask/tell:

* the search space is translated once into hyperopt's ``hp.*`` expressions, labelled with
  nniray's flat keys (``outer/option/inner`` for nested choices), so the values hyperopt records
  are exactly :meth:`SearchSpace.flatten`'s encoding and ``import_data`` inserts finished trials
  directly;
* each suggestion asks ``hyperopt.<algorithm>.suggest`` for one new trial document, with every
  finished trial in the ``Trials`` history; with ``parallel_optimize`` the pending ones count as
  finished with the Constant Liar loss (min/max/mean of the reported values, as NNI) for that one
  call;
* hyperopt minimises, so a reward is negated when ``optimize_mode`` is ``maximize``.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from nniray.search_space import Param, SearchSpace, SearchSpaceError, parse
from nniray.tuner import Tuner
from nniray.utils import MetricError, OptimizeMode, extract_scalar_reward, parse_optimize_mode

logger = logging.getLogger(__name__)

ALGORITHMS = ("tpe", "random_search", "anneal")


def _hp_level(params: list[Param]) -> dict:
    from hyperopt import hp
    out: dict[str, Any] = {}
    for p in params:
        t, v, label = p.type, p.value, p.key
        if t == "choice":
            options = []
            for i, opt in enumerate(v):
                child = p.children[i] if p.children else None
                if child is None:
                    options.append(opt)
                else:
                    sub = _hp_level(child.params)
                    sub["_name"] = opt["_name"]
                    options.append(sub)
            out[p.name] = hp.choice(label, options)
        elif t == "randint":
            out[p.name] = hp.randint(label, int(v[0]), int(v[1]))
        elif t == "uniform":
            out[p.name] = hp.uniform(label, v[0], v[1])
        elif t == "quniform":
            out[p.name] = hp.quniform(label, v[0], v[1], v[2])
        elif t == "loguniform":
            out[p.name] = hp.loguniform(label, math.log(v[0]), math.log(v[1]))
        elif t == "qloguniform":
            out[p.name] = hp.qloguniform(label, math.log(v[0]), math.log(v[1]), v[2])
        elif t == "normal":
            out[p.name] = hp.normal(label, v[0], v[1])
        elif t == "qnormal":
            out[p.name] = hp.qnormal(label, v[0], v[1], v[2])
        elif t == "lognormal":
            out[p.name] = hp.lognormal(label, v[0], v[1])
        elif t == "qlognormal":
            out[p.name] = hp.qlognormal(label, v[0], v[1], v[2])
        else:  # parse() admits only the ten types
            raise SearchSpaceError(f"HyperoptTuner: unknown _type {t!r} (key {p.key!r})")
    return out


class HyperoptTuner(Tuner):
    """NNI's ``HyperoptTuner(algorithm_name, optimize_mode='minimize', parallel_optimize=False,
    constant_liar_type='min')`` on hyperopt.

    ``algorithm_name``: 'tpe' (default here, so that the ``TPE_legacy`` built-in needs no
    classArgs), 'random_search' or 'anneal'.  ``seed`` (nniray addition) makes it reproducible.
    """

    def __init__(self, algorithm_name: str = "tpe", optimize_mode: str = "minimize",
                 parallel_optimize: bool = False, constant_liar_type: str = "min", seed: int | None = None):
        import hyperopt  # noqa: F401  (fail at construction, naming the package, if missing)

        if algorithm_name not in ALGORITHMS:
            raise ValueError(f"algorithm_name must be one of {', '.join(ALGORITHMS)}, got {algorithm_name!r}")
        if not isinstance(parallel_optimize, bool):
            raise ValueError(f"parallel_optimize must be true or false, got {parallel_optimize!r}")
        if constant_liar_type not in ("min", "max", "mean"):
            raise ValueError(f"constant_liar_type must be 'min', 'max' or 'mean', got {constant_liar_type!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.algorithm_name = algorithm_name
        self.optimize_mode = parse_optimize_mode(optimize_mode)
        self.parallel_optimize = parallel_optimize
        self.constant_liar_type = constant_liar_type
        self._rng = np.random.default_rng(seed)
        self.space: SearchSpace | None = None
        self._hp_space: Any = None
        self._trials: Any = None
        self._domain: Any = None
        self._tid_of: dict[Any, int] = {}
        self._rewards: list[float] = []

    # -- helpers -------------------------------------------------------------------------
    def _algorithm(self):
        from hyperopt import anneal, rand, tpe
        return {"tpe": tpe.suggest, "random_search": rand.suggest, "anneal": anneal.suggest}[self.algorithm_name]

    def _loss(self, reward: float) -> float:
        return -reward if self.optimize_mode is OptimizeMode.Maximize else reward

    def _labels(self) -> list[str]:
        return list(self._domain.params)

    def _misc(self, tid: int, flat: dict) -> dict:
        labels = self._labels()
        return {"tid": tid, "cmd": self._domain.cmd, "workdir": None,
                "idxs": {k: ([tid] if k in flat else []) for k in labels},
                "vals": {k: ([flat[k]] if k in flat else []) for k in labels}}

    # -- Tuner API -----------------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        import hyperopt
        space = parse(search_space)
        self.space = space
        self._hp_space = _hp_level(space.params)
        self._trials = hyperopt.Trials()
        self._domain = hyperopt.base.Domain(lambda _: 0.0, self._hp_space)
        self._tid_of = {}
        self._rewards = []

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        from hyperopt import JOB_STATE_DONE, STATUS_OK
        if self.space is None:
            raise RuntimeError("HyperoptTuner: update_search_space() must be called before generate_parameters()")
        trials = self._trials
        lied = []
        if self.parallel_optimize and self._rewards:
            lie = {"min": min, "max": max, "mean": lambda r: sum(r) / len(r)}[self.constant_liar_type](self._rewards)
            for doc in trials._dynamic_trials:
                if doc["state"] != JOB_STATE_DONE:
                    lied.append((doc, doc["state"], doc["result"]))
                    doc["state"], doc["result"] = JOB_STATE_DONE, {"loss": self._loss(lie), "status": STATUS_OK}
            trials.refresh()
        try:
            tid = trials.new_trial_ids(1)[0]
            seed = int(self._rng.integers(2**31 - 1))
            docs = self._algorithm()([tid], self._domain, trials, seed)
        finally:
            for doc, state, result in lied:
                doc["state"], doc["result"] = state, result
        trials.insert_trial_docs(docs)
        trials.refresh()
        self._tid_of[parameter_id] = tid
        vals = {k: v[0] for k, v in docs[0]["misc"]["vals"].items() if v}
        return self.space.format(self._to_flat(vals))

    def _to_flat(self, vals: dict) -> dict:
        flat = {}
        for p in self.space.walk():
            if p.key in vals:
                x = vals[p.key]
                flat[p.key] = int(x) if p.type in ("choice", "randint") else p.quantize(float(x))
        return flat

    def _doc(self, parameter_id: Any):
        tid = self._tid_of.get(parameter_id)
        if tid is None:
            return None
        for doc in self._trials._dynamic_trials:
            if doc["tid"] == tid:
                return doc
        return None

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        from hyperopt import JOB_STATE_DONE, STATUS_OK
        reward = extract_scalar_reward(value)
        doc = self._doc(parameter_id)
        if doc is None:
            self.import_data([{"parameter": parameters, "value": reward}])
            return
        doc["state"], doc["result"] = JOB_STATE_DONE, {"loss": self._loss(reward), "status": STATUS_OK}
        self._rewards.append(reward)
        self._trials.refresh()

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        from hyperopt import JOB_STATE_ERROR
        doc = self._doc(parameter_id)
        if doc is not None and not success and doc["result"].get("status") != "ok":
            doc["state"] = JOB_STATE_ERROR  # hyperopt's models then ignore it
            self._trials.refresh()

    def import_data(self, data: list[dict]) -> None:
        from hyperopt import JOB_STATE_DONE, STATUS_OK
        if self.space is None:
            raise RuntimeError("HyperoptTuner: update_search_space() must be called before import_data()")
        n = 0
        for i, entry in enumerate(data or []):
            try:
                reward = extract_scalar_reward(entry["value"])
                flat = self.space.flatten(entry["parameter"])
            except (KeyError, TypeError, SearchSpaceError, MetricError) as e:
                logger.warning("HyperoptTuner: import_data skips entry %d (%s)", i, e)
                continue
            tid = self._trials.new_trial_ids(1)[0]
            doc = self._trials.new_trial_docs([tid], [None], [{"loss": self._loss(reward), "status": STATUS_OK}],
                                              [self._misc(tid, flat)])[0]
            doc["state"] = JOB_STATE_DONE
            self._trials.insert_trial_docs([doc])
            self._rewards.append(reward)
            n += 1
        self._trials.refresh()
        logger.info("HyperoptTuner: imported %d of %d trials", n, len(data or []))
