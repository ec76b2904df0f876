"""Small ask/tell adapters: every optimizer gets the same NNI-format search space, the same
budget and the same seed.

A contender is ``ask() -> params`` / ``tell(params, value)`` (minimisation) plus
``observe(list of (params, value))`` to load past observations without asking (nniray tuners:
``import_data``; the others: their own "add a finished trial" call).  ``available()`` says why a
contender cannot run, so a missing library or a tuner not written yet is reported, not fatal.
"""
from __future__ import annotations

import inspect
import logging
import math
import os
import random
import tempfile
import warnings
from typing import Any, Callable

import numpy as np

# name -> (builder, kind) ; kind "nniray" or "external"
NNIRAY_TUNERS = ["TPE", "Random", "Anneal", "Evolution", "GPTuner", "SMAC", "MetisTuner",
                 "DNGOTuner", "PPOTuner", "BOHB (full budget)"]
EXTERNAL = ["hyperopt TPE", "Optuna TPE", "Optuna GP", "Optuna CMA-ES", "bayes-opt GP", "SMAC3 HPO"]
# Not run: multi-fidelity advisors and tuners whose contract is not "one full-budget config".
SKIPPED = {
    "Hyperband": "advisor whose contract is successive halving over TRIAL_BUDGET; at full budget only it "
                 "is Random search, so it is not run separately",
    "BOHB": "run as 'nniray BOHB (full budget)': its KDE configuration generator fed every result at "
            "max_budget; the successive-halving schedule is not exercised by a black-box benchmark",
    "PBTTuner": "population-based training needs checkpoints and a step budget, not a black-box objective",
    "GridSearch": "grid over choice/quniform/randint only; these spaces are continuous",
    "BatchTuner": "runs a user-given list of configurations, not a search",
    "NetworkMorphism": "searches network graphs, not a hyperparameter space",
}


class Contender:
    name = "?"

    def ask(self) -> dict:
        raise NotImplementedError

    def tell(self, params: dict, value: float) -> None:
        raise NotImplementedError

    def observe(self, data: list[tuple[dict, float]]) -> None:
        for p, v in data:  # fallback: tell one by one (no ask needed)
            self.tell(p, v)


# -- nniray -----------------------------------------------------------------------------------

class NniRayContender(Contender):
    def __init__(self, algo: str, search_space: dict, seed: int):
        from nniray.strategies.registry import create_algorithm, resolve_class
        self.name = f"nniray {algo}"
        cls, _, _ = resolve_class("tuner", algo)
        args: dict[str, Any] = {"optimize_mode": "minimize"}
        if "seed" in inspect.signature(cls.__init__).parameters:
            args["seed"] = seed
        random.seed(seed)
        np.random.seed(seed % 2**32)  # tuners without a seed argument use the global RNGs
        self.tuner = create_algorithm("tuner", algo, args)
        self.tuner.update_search_space(search_space)
        self._next_id = 0
        self._ids: dict[int, int] = {}

    def ask(self) -> dict:
        pid = self._next_id
        self._next_id += 1
        params = self.tuner.generate_parameters(pid)
        self._ids[id(params)] = pid
        return params

    def tell(self, params: dict, value: float) -> None:
        pid = self._ids.pop(id(params))
        self.tuner.receive_trial_result(pid, params, value)
        self.tuner.trial_end(pid, True)

    def observe(self, data: list[tuple[dict, float]]) -> None:
        self.tuner.import_data([{"parameter": p, "value": v} for p, v in data])


class NniRayBOHBContender(Contender):
    """BOHB at full budget only: the advisor's own configuration generator (KDE over the
    encoded space, ``random_fraction`` prior draws) asked for a configuration and fed each result
    at the largest budget, i.e. BOHB without the successive-halving part."""

    def __init__(self, search_space: dict, seed: int):
        from nniray.strategies.bohb import BOHB
        self.name = "nniray BOHB (full budget)"
        args: dict[str, Any] = {"optimize_mode": "minimize"}
        if "seed" in inspect.signature(BOHB.__init__).parameters:
            args["seed"] = seed
        np.random.seed(seed % 2**32)
        self.bohb = BOHB(**args)
        self.bohb.handle_update_search_space(search_space)
        self.rng = np.random.default_rng(seed)

    def ask(self) -> dict:
        b = self.bohb
        vector = b.cg.propose()
        return b.space.sample(self.rng) if vector is None else b.space.format(b.encoder.decode(vector))

    def tell(self, params: dict, value: float) -> None:
        b = self.bohb
        b.cg.new_result(b.encoder.encode_params(params), float(value), b.max_budget)


# -- Optuna -------------------------------------------------------------------------------------

def _optuna_distributions(space: dict) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    out = {}
    for k, s in space.items():
        t, v = s["_type"], s["_value"]
        if t == "uniform":
            out[k] = FloatDistribution(v[0], v[1])
        elif t == "loguniform":
            out[k] = FloatDistribution(v[0], v[1], log=True)
        elif t == "randint":
            out[k] = IntDistribution(v[0], v[1] - 1)
        elif t == "choice":
            out[k] = CategoricalDistribution(v)
        else:
            raise ValueError(f"benchmark space type {t} not mapped for Optuna")
    return out


class OptunaContender(Contender):
    def __init__(self, which: str, search_space: dict, seed: int):
        import optuna
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        warnings.filterwarnings("ignore", module="optuna")
        self.name = f"Optuna {which}"
        sampler = {"TPE": lambda: optuna.samplers.TPESampler(seed=seed),
                   "GP": lambda: optuna.samplers.GPSampler(seed=seed),
                   "CMA-ES": lambda: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)}[which]()
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.dists = _optuna_distributions(search_space)
        self._trials: dict[int, Any] = {}

    def ask(self) -> dict:
        trial = self.study.ask(self.dists)
        params = dict(trial.params)
        self._trials[id(params)] = trial
        return params

    def tell(self, params: dict, value: float) -> None:
        self.study.tell(self._trials.pop(id(params)), value)

    def observe(self, data: list[tuple[dict, float]]) -> None:
        import optuna
        self.study.add_trials([optuna.trial.create_trial(params=p, distributions=self.dists, value=v)
                               for p, v in data])


# -- hyperopt -------------------------------------------------------------------------------------

class HyperoptContender(Contender):
    """hyperopt's TPE driven step by step: ``tpe.suggest`` writes a trial document, we fill its
    result (hyperopt has no public ask/tell; this is how its own ``fmin`` loop works)."""

    def __init__(self, search_space: dict, seed: int):
        import hyperopt
        from hyperopt import hp
        logging.getLogger("hyperopt").setLevel(logging.ERROR)
        self.name = "hyperopt TPE"
        self.hyperopt = hyperopt
        space = {}
        for k, s in search_space.items():
            t, v = s["_type"], s["_value"]
            space[k] = {"uniform": lambda: hp.uniform(k, v[0], v[1]),
                        "loguniform": lambda: hp.loguniform(k, math.log(v[0]), math.log(v[1])),
                        "randint": lambda: hp.randint(k, v[0], v[1]),
                        "choice": lambda: hp.choice(k, v)}[t]()
        self.space = space
        self.domain = hyperopt.Domain(lambda p: 0.0, space)
        self.trials = hyperopt.Trials()
        self.rng = np.random.default_rng(seed)
        self._docs: dict[int, dict] = {}

    def _new_doc(self, algo: Callable) -> tuple[dict, dict]:
        h = self.hyperopt
        tid = self.trials.new_trial_ids(1)
        self.trials.refresh()
        docs = algo(tid, self.domain, self.trials, int(self.rng.integers(2**31 - 1)))
        self.trials.insert_trial_docs(docs)
        self.trials.refresh()
        doc = self.trials._dynamic_trials[-1]
        vals = {k: v[0] for k, v in doc["misc"]["vals"].items() if v}
        params = h.space_eval(self.space, vals)
        return doc, dict(params)

    def _finish(self, doc: dict, value: float) -> None:
        doc["state"] = self.hyperopt.JOB_STATE_DONE
        doc["result"] = {"loss": float(value), "status": self.hyperopt.STATUS_OK}
        self.trials.refresh()

    def ask(self) -> dict:
        doc, params = self._new_doc(self.hyperopt.tpe.suggest)
        self._docs[id(params)] = doc
        return params

    def tell(self, params: dict, value: float) -> None:
        self._finish(self._docs.pop(id(params)), value)

    def observe(self, data: list[tuple[dict, float]]) -> None:
        # hyperopt documents hold internal (index) values: let rand.suggest build the documents,
        # then record the given values for them; callers pass values of the points we return.
        raise NotImplementedError("use observe_random")

    def observe_random(self, n: int, fn: Callable[[dict], float]) -> None:
        for _ in range(n):
            doc, params = self._new_doc(self.hyperopt.rand.suggest)
            self._finish(doc, fn(params))


# -- bayesian-optimization ------------------------------------------------------------------------

class BayesOptContender(Contender):
    """bayesian-optimization 3.x (GP + its default acquisition) via ``suggest``/``register``.
    It is continuous-only: loguniform runs in log space; randint and choice are relaxed to a
    continuous index that is floored (the registered point is the continuous one)."""

    def __init__(self, search_space: dict, seed: int):
        from bayes_opt import BayesianOptimization
        self.name = "bayes-opt GP"
        self.space = search_space
        bounds = {}
        for k, s in search_space.items():
            t, v = s["_type"], s["_value"]
            if t == "uniform":
                bounds[k] = (v[0], v[1])
            elif t == "loguniform":
                bounds[k] = (math.log(v[0]), math.log(v[1]))
            elif t == "randint":
                bounds[k] = (v[0], v[1] - 1e-9)
            elif t == "choice":
                bounds[k] = (0.0, len(v) - 1e-9)
        self.opt = BayesianOptimization(f=None, pbounds=bounds, random_state=seed, verbose=0,
                                        allow_duplicate_points=True)
        self._raw: dict[int, dict] = {}

    def _decode(self, x: dict) -> dict:
        out = {}
        for k, s in self.space.items():
            t, v = s["_type"], s["_value"]
            u = float(x[k])
            out[k] = {"uniform": lambda: u, "loguniform": lambda: math.exp(u),
                      "randint": lambda: int(min(math.floor(u), v[1] - 1)),
                      "choice": lambda: v[min(int(math.floor(u)), len(v) - 1)]}[t]()
        return out

    def ask(self) -> dict:
        raw = self.opt.suggest()
        params = self._decode(raw)
        self._raw[id(params)] = raw
        return params

    def tell(self, params: dict, value: float) -> None:
        self.opt.register(params=self._raw.pop(id(params)), target=-float(value))

    def observe_random(self, n: int, fn: Callable[[dict], float], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(n):
            raw = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in self.opt.space._bounds_dict().items()} \
                if hasattr(self.opt.space, "_bounds_dict") else \
                {k: float(rng.uniform(b[0], b[1])) for k, b in zip(self.opt.space.keys, self.opt.space.bounds)}
            self.opt.register(params=raw, target=-fn(self._decode(raw)))


# -- SMAC3 ----------------------------------------------------------------------------------------

class Smac3Contender(Contender):
    """SMAC3's HyperparameterOptimizationFacade (random forest + local search), ask/tell."""

    def __init__(self, search_space: dict, seed: int, n_trials: int = 100):
        from ConfigSpace import (CategoricalHyperparameter, ConfigurationSpace,
                                 UniformFloatHyperparameter, UniformIntegerHyperparameter)
        from smac import HyperparameterOptimizationFacade, Scenario
        self.name = "SMAC3 HPO"
        cs = ConfigurationSpace(seed=seed)
        for k, s in search_space.items():
            t, v = s["_type"], s["_value"]
            if t in ("uniform", "loguniform"):
                cs.add(UniformFloatHyperparameter(k, v[0], v[1], log=t == "loguniform"))
            elif t == "randint":
                cs.add(UniformIntegerHyperparameter(k, v[0], v[1] - 1))
            elif t == "choice":
                cs.add(CategoricalHyperparameter(k, list(v)))
        self.cs = cs
        self._tmp = tempfile.TemporaryDirectory(prefix="smac3_bench_")
        scen = Scenario(cs, deterministic=True, n_trials=n_trials, seed=seed,
                        output_directory=os.path.join(self._tmp.name, "out"))
        self.smac = HyperparameterOptimizationFacade(
            scen, lambda config, seed=0: 0.0, overwrite=True, logging_level=40)
        self._infos: dict[int, Any] = {}

    def ask(self) -> dict:
        info = self.smac.ask()
        params = dict(info.config)
        self._infos[id(params)] = info
        return params

    def tell(self, params: dict, value: float) -> None:
        from smac.runhistory.dataclasses import TrialValue
        self.smac.tell(self._infos.pop(id(params)), TrialValue(cost=float(value)), save=False)

    def observe(self, data: list[tuple[dict, float]]) -> None:
        from ConfigSpace import Configuration
        from smac.runhistory.dataclasses import TrialInfo, TrialValue
        for p, v in data:
            info = TrialInfo(config=Configuration(self.cs, values=p), seed=0)
            self.smac.tell(info, TrialValue(cost=float(v)), save=False)


# -- registry of contenders -------------------------------------------------------------------------

def build(name: str, search_space: dict, seed: int, n_evals: int = 100) -> Contender:
    if name == "nniray BOHB (full budget)":
        return NniRayBOHBContender(search_space, seed)
    if name.startswith("nniray "):
        return NniRayContender(name.split(" ", 1)[1], search_space, seed)
    if name.startswith("Optuna "):
        return OptunaContender(name.split(" ", 1)[1], search_space, seed)
    if name == "hyperopt TPE":
        return HyperoptContender(search_space, seed)
    if name == "bayes-opt GP":
        return BayesOptContender(search_space, seed)
    if name == "SMAC3 HPO":
        return Smac3Contender(search_space, seed, n_trials=n_evals)
    raise ValueError(f"unknown contender {name!r}; known: {', '.join(all_names())}")


def all_names() -> list[str]:
    return [f"nniray {t}" for t in NNIRAY_TUNERS] + EXTERNAL


def available(name: str, search_space: dict | None = None) -> str | None:
    """None when the contender can be built on this space, else the reason it cannot."""
    space = search_space or {"x": {"_type": "uniform", "_value": [0.0, 1.0]},
                             "y": {"_type": "uniform", "_value": [0.0, 1.0]}}
    try:
        c = build(name, space, 0)
        # enough steps to pass every startup phase we know of (Optuna: 10 random trials)
        for i in range(12):
            p = c.ask()
            c.tell(p, float(p["x"]) ** 2 + float(p["y"]))
    except Exception as e:  # noqa: BLE001 - any failure means "not available", with the reason
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        return msg[:200]
    return None
