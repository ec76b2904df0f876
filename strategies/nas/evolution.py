"""``RegularizedEvolution``: aging evolution, Algorithm 1 of Real et al. (as NNI 2.x runs it).

1. Submit ``population_size`` random models, regardless of concurrency; each result joins the
   population (a FIFO queue).
2. Until ``cycles`` results: for every free slot, pick ``sample_size`` members of the
   population at random, take the best as the parent, and submit a child that resamples each
   label with probability ``mutation_prob`` (the parent's value is not excluded); each result
   joins the population and the oldest member leaves.

``on_failure='ignore'`` drops a failed model (it does not count toward ``cycles``; a new one is
made); ``'worst'`` counts it with -inf (maximize) / +inf (minimize), so the population learns
to avoid it.  A model that ends without a metric is a failure.
"""
from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._space import model_of, random_sample, space_of
from .base import BaseStrategy, InvalidMutation, Model, ModelStatus, get_execution_engine, list_models, submit_models

log = logging.getLogger("nniray.nas.strategy")


@dataclass
class Individual:
    x: dict
    y: float


class RegularizedEvolution(BaseStrategy):
    def __init__(self, optimize_mode: str = "maximize", population_size: int = 100, sample_size: int = 25,
                 cycles: int = 20000, mutation_prob: float = 0.05, on_failure: str = "ignore",
                 seed: int | None = None) -> None:
        if optimize_mode not in ("maximize", "minimize"):
            raise ValueError(f"RegularizedEvolution: optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if on_failure not in ("ignore", "worst"):
            raise ValueError(f"RegularizedEvolution: on_failure must be 'ignore' or 'worst', got {on_failure!r}")
        if not (isinstance(sample_size, int) and isinstance(population_size, int) and 0 < sample_size < population_size):
            raise ValueError(f"RegularizedEvolution: needs 0 < sample_size < population_size, got sample_size="
                             f"{sample_size}, population_size={population_size}")
        if not 0 <= mutation_prob <= 1:
            raise ValueError(f"RegularizedEvolution: mutation_prob must be in [0, 1], got {mutation_prob}")
        self.optimize_mode, self.population_size, self.sample_size = optimize_mode, population_size, sample_size
        self.cycles, self.mutation_prob, self.on_failure = cycles, mutation_prob, on_failure
        self.seed = seed
        self._population: collections.deque = collections.deque()
        self._running: list[Model] = []
        self._success_count = 0

    # -- Algorithm 1 ----------------------------------------------------------------------
    def best_parent(self, rng: np.random.RandomState) -> dict:
        members = list(self._population)
        idx = rng.permutation(len(members))[: self.sample_size]
        samples = [members[i] for i in idx]
        pick = max if self.optimize_mode == "maximize" else min
        return pick(samples, key=lambda s: s.y).x

    def mutate(self, parent: dict, space: dict, rng: np.random.RandomState) -> dict:
        child = {}
        for k, v in parent.items():
            child[k] = space[k]._random_value(rng) if rng.uniform(0, 1) < self.mutation_prob else v
        return child

    def _score(self, model: Model) -> float | None:
        failed = model.status == ModelStatus.Failed or (model.status == ModelStatus.Trained and model.metric is None)
        if failed:
            if self.on_failure == "worst":
                return float("-inf") if self.optimize_mode == "maximize" else float("inf")
            return None
        if model.status == ModelStatus.Trained:
            return float(model.metric)
        return None

    def _collect(self) -> None:
        still = []
        for model in self._running:
            if model.status not in (ModelStatus.Trained, ModelStatus.Failed):
                still.append(model)
                continue
            y = self._score(model)
            if y is None:
                log.info("model %d failed; ignored (on_failure='ignore')", model.model_id)
                continue
            self._add(model.sample, y)
        self._running = still

    def _add(self, x: dict, y: float) -> None:
        self._success_count += 1
        self._population.append(Individual(dict(x), y))
        if len(self._population) > self.population_size:
            self._population.popleft()

    def _submit(self, base_model, mutators, sample: dict) -> bool:
        try:
            model = model_of(base_model, mutators, sample).freeze()
        except InvalidMutation as e:
            log.warning("invalid model skipped: %s", e)
            return False
        self._running.append(model)
        submit_models(model)
        return True

    def run(self, base_model, applied_mutators) -> None:
        space = space_of(base_model, applied_mutators)
        rng = np.random.RandomState(self.seed)
        engine = get_execution_engine()
        # resume: finished models rebuild the population in their original order
        for model in list_models():
            y = self._score(model)
            if y is not None:
                self._add(model.sample, y)
        log.info("initializing the first population")
        while len(self._population) < self.population_size:
            while len(self._population) + len(self._running) < self.population_size:
                if engine.budget_exhausted():
                    return
                self._submit(base_model, applied_mutators, random_sample(space, rng))
            engine.wait_models(*self._running[:1])
            self._collect()
        log.info("running mutations")
        while self._success_count < self.cycles:
            while engine.query_available_resources() > 0 and self._success_count + len(self._running) < self.cycles:
                if engine.budget_exhausted():
                    return
                self._submit(base_model, applied_mutators, self.mutate(self.best_parent(rng), space, rng))
                self._collect()  # results that are in already shape the next parent
            if engine.budget_exhausted() and not self._running:
                return
            if self._running:
                engine.idle_wait()
            self._collect()
