"""NNI's ``RegularizedEvolutionTuner`` (aging evolution, Real et al. 2019).

As NNI's: a random initial population of ``population_size`` individuals; then each
suggestion samples ``sample_size`` members (with replacement) of the population, mutates one
key of the best of them, and the child's result joins the population while the oldest member
leaves (the population never holds more than ``population_size``).  A failed individual of
the initial population is replaced by a fresh random one.

Search space: NNI's classic NAS types ``layer_choice`` (``_value``: candidate list; a value is
``{"_value": candidate, "_idx": i}``) and ``input_choice`` (``_value``: ``{"candidates": [...],
"n_chosen": k}``; a value is ``{"_value": [...], "_idx": [...]}``), as NNI 3.0's; nniray also
accepts a plain ``choice`` (a value is the option itself) so that an HPO space works too.
While no individual can be made (the initial population is out and no result has come back),
``generate_parameters`` raises ``NoMoreTrialError`` ("not now"), as NNI's does.
"""
from __future__ import annotations

import copy
import logging
from collections import deque
from typing import Any

import numpy as np

from nniray.search_space import SearchSpaceError
from nniray.tuner import NoMoreTrialError, Tuner
from nniray.utils import OptimizeMode, extract_scalar_reward, parse_optimize_mode

logger = logging.getLogger(__name__)

TYPES = ("layer_choice", "input_choice", "choice")


class RegularizedEvolutionTuner(Tuner):
    """``RegularizedEvolutionTuner(optimize_mode='maximize', population_size=100, sample_size=25)``
    as NNI's; ``seed`` (nniray addition) makes it reproducible."""

    def __init__(self, optimize_mode: str = "maximize", population_size: int = 100, sample_size: int = 25,
                 seed: int | None = None):
        self.optimize_mode = parse_optimize_mode(optimize_mode)
        for name, v in (("population_size", population_size), ("sample_size", sample_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.population_size = population_size
        self.sample_size = sample_size
        self._rng = np.random.default_rng(seed)
        self.search_space: dict | None = None
        self.initial_population: deque = deque()
        self.population: deque = deque()  # (parameter_id, parameters, reward as "higher is better")
        self.history: dict[Any, dict] = {}
        self._from_initial: dict[Any, bool] = {}

    def update_search_space(self, search_space: dict) -> None:
        if not isinstance(search_space, dict) or not search_space:
            raise SearchSpaceError("RegularizedEvolutionTuner needs a non-empty search space of layer_choice, "
                                   "input_choice or choice entries")
        for key, spec in search_space.items():
            if not isinstance(spec, dict) or spec.get("_type") not in TYPES:
                got = spec.get("_type") if isinstance(spec, dict) else spec
                raise SearchSpaceError(f"RegularizedEvolutionTuner does not support _type {got!r} (key {key!r}); "
                                       f"it supports: {', '.join(TYPES)}")
            value = spec.get("_value")
            if spec["_type"] == "input_choice":
                if not isinstance(value, dict) or not value.get("candidates") or "n_chosen" not in value:
                    raise SearchSpaceError(f"{key!r}: input_choice needs _value {{\"candidates\": [...], \"n_chosen\": k}}")
            elif not isinstance(value, list) or not value:
                raise SearchSpaceError(f"{key!r}: {spec['_type']} needs a non-empty _value list")
        self.search_space = search_space
        self.initial_population = deque(self._random_model() for _ in range(self.population_size))

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.initial_population:
            arch = self.initial_population.popleft()
            self._from_initial[parameter_id] = True
        elif self.population:
            members = list(self.population)
            picks = [members[int(i)] for i in self._rng.integers(len(members), size=self.sample_size)]
            best = max(picks, key=lambda m: m[2])
            arch = self._mutate_model(best[1])
            self._from_initial[parameter_id] = False
        else:
            raise NoMoreTrialError("RegularizedEvolutionTuner: the initial population is out; waiting for results")
        self.history[parameter_id] = arch
        return copy.deepcopy(arch)

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        reward = extract_scalar_reward(value)
        params = self.history.get(parameter_id, parameters)
        if self.optimize_mode is OptimizeMode.Minimize:
            reward = -reward
        self.population.append((parameter_id, params, reward))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        if success:
            return
        self.history.pop(parameter_id, None)
        if self._from_initial.pop(parameter_id, False):
            self.initial_population.append(self._random_model())

    def import_data(self, data: list[dict]) -> None:
        for i, entry in enumerate(data or []):
            try:
                self.receive_trial_result(("imported", i), entry["parameter"], entry["value"])
            except (KeyError, TypeError, ValueError) as e:
                logger.warning("RegularizedEvolutionTuner: import_data skips entry %d (%s)", i, e)

    # -- mutation ---------------------------------------------------------------------------
    def _mutate(self, key: str, individual: dict) -> None:
        spec = self.search_space[key]
        t, v = spec["_type"], spec["_value"]
        if t == "layer_choice":
            idx = int(self._rng.integers(len(v)))
            individual[key] = {"_value": v[idx], "_idx": idx}
        elif t == "input_choice":
            candidates, n = v["candidates"], int(v["n_chosen"])
            idxs = [int(i) for i in self._rng.integers(len(candidates), size=n)]
            individual[key] = {"_value": [candidates[k] for k in idxs], "_idx": idxs}
        else:
            individual[key] = copy.deepcopy(v[int(self._rng.integers(len(v)))])

    def _random_model(self) -> dict:
        individual: dict = {}
        for key in self.search_space:
            self._mutate(key, individual)
        return individual

    def _mutate_model(self, parameters: dict) -> dict:
        child = copy.deepcopy(parameters)
        keys = list(self.search_space)
        self._mutate(keys[int(self._rng.integers(len(keys)))], child)
        return child
