"""Naive evolution (NNI's ``Evolution`` tuner).

* The first ``population_size`` suggestions are random individuals.
* Afterwards each suggestion runs a tournament: two random members of the population are
  compared, the worse one dies, and a copy of the better one with **one** of its (active)
  parameters re-drawn from the prior becomes the new trial.  When the child's result
  arrives it joins the population.  (With a single member, that member is mutated.)
* A trial that ends without a result (failed, killed, or no final metric) is replaced:
  the next suggestion is a fresh random individual.
* NNI requires ``population_size >= trialConcurrency`` and fails otherwise.  Here, when more
  parameters are requested than the population can serve (every member is out as a running
  trial), the tuner returns random individuals instead of failing, and logs a warning once.
* Results that arrive for parameters the tuner did not generate (``import_data`` on resume,
  or a foreign ``receive_trial_result``) join the population like children do and count
  towards the initial random generation; if the population then exceeds
  ``population_size``, its worst member dies.

Mutating a nested ``choice`` re-draws the option; when it changes, the new branch's
parameters are drawn from the prior.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._core_base import CoreTuner, active_keys, check_int, sample_flat

logger = logging.getLogger(__name__)


@dataclass
class Individual:
    flat: dict
    loss: float


class EvolutionTuner(CoreTuner):
    """Naive evolution.

    Parameters
    ----------
    optimize_mode : 'maximize' (default) | 'minimize'
    population_size : int, default 32
        NNI's usage doc says 20 and its API signature 32 (spec C1); NNI 3.0's code (32) wins.
        Should be well above the trial concurrency.
    seed : int, optional
    """

    algorithm_name = "Evolution"

    def __init__(self, optimize_mode: str = "maximize", population_size: int = 32, seed: int | None = None) -> None:
        super().__init__(optimize_mode, seed)
        self.population_size = check_int("population_size", population_size, 1)
        self.population: list[Individual] = []
        self._n_seen = 0  # individuals created so far (generated or imported)
        self._outstanding: set = set()  # generated ids without a result yet
        self._random_credit = 0  # random individuals owed for lost trials
        self._warned = False

    def _on_space_changed(self) -> None:
        # keep members whose parameters fit the new space (observations were re-encoded)
        self.population = [Individual(ob.flat, ob.loss) for ob in self.observations][-self.population_size:]
        self._outstanding = set()

    # -- suggestion ---------------------------------------------------------------------
    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        params = super().generate_parameters(parameter_id, **kwargs)
        self._outstanding.add(parameter_id)
        return params

    def _suggest(self, parameter_id: Any, rng: np.random.Generator) -> dict:
        space = self.space
        if self._random_credit > 0:
            self._random_credit -= 1
            self._n_seen += 1
            return sample_flat(space, rng)
        if self._n_seen < self.population_size:
            self._n_seen += 1
            return sample_flat(space, rng)
        self._n_seen += 1
        if not self.population:
            if not self._warned:
                logger.warning("Evolution: every member of the population (%d) is out as a running trial; "
                               "sending random individuals. Set population_size well above trial concurrency.",
                               self.population_size)
                self._warned = True
            return sample_flat(space, rng)
        if len(self.population) == 1:
            parent = self.population[0]
        else:
            i, j = rng.choice(len(self.population), size=2, replace=False)
            a, b = self.population[i], self.population[j]
            # the worse one dies (ties: the second), the better one is mutated
            parent, dead = (b, i) if b.loss < a.loss else (a, j)
            self.population.pop(dead)
        return self._mutate(parent.flat, rng)

    def _mutate(self, flat: dict, rng: np.random.Generator) -> dict:
        space = self.space
        active = active_keys(space, flat)
        if not active:  # empty search space: nothing to mutate
            return dict(flat)
        p = active[int(rng.integers(len(active)))]
        child = {k: flat[k] for k in (q.key for q in active)}
        new = p.sample(rng)
        if p.children and new != child[p.key]:
            # drop the old branch, draw the new branch from the prior
            old_branch = p.children[child[p.key]]
            if old_branch is not None:
                for q in old_branch.walk():
                    child.pop(q.key, None)
            new_branch = p.children[new]
            if new_branch is not None:
                child.update(sample_flat(new_branch, rng))
        child[p.key] = new
        return child

    # -- results ----------------------------------------------------------------------------
    def _observe(self, parameter_id: Any, flat: dict, reward: float) -> None:
        super()._observe(parameter_id, flat, reward)
        if parameter_id in self._outstanding:
            self._outstanding.discard(parameter_id)
        else:
            self._n_seen += 1  # a foreign/imported individual
        self.population.append(Individual(flat, self.loss_of(reward)))
        if len(self.population) > self.population_size:
            worst = max(range(len(self.population)), key=lambda k: self.population[k].loss)
            self.population.pop(worst)

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        super().trial_end(parameter_id, success, **kwargs)
        if parameter_id in self._outstanding:
            # ended without a result: replace the lost individual with a random one
            self._outstanding.discard(parameter_id)
            self._random_credit += 1
