"""``Random(variational=False, dedup=True, model_filter=None)``: random sampling.

Non-variational mode samples the space found by a dry run; with ``dedup`` no configuration is
submitted twice and the strategy stops after 500 consecutive duplicate draws (the space is
then, in all likelihood, exhausted).  Variational mode re-applies the mutators each time (a
space whose size or candidates vary); dedup is impossible there, so ``variational=True`` with
``dedup=True`` is refused.  ``model_filter(model) -> bool`` drops models before submission (a
filtered draw counts as a draw for dedup).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from ._space import model_of, random_sample, space_of
from .base import BaseStrategy, InvalidMutation, Model, Sampler, get_execution_engine, list_models, sample_key, \
    submit_models, wait_for_resource

log = logging.getLogger("nniray.nas.strategy")

DEDUP_RETRIES = 500


class _RandomSampler(Sampler):
    def __init__(self, rng: np.random.RandomState) -> None:
        self.rng = rng

    def choice(self, candidates, mutator, model, index):
        return candidates[int(self.rng.randint(len(candidates)))]


class Random(BaseStrategy):
    def __init__(self, variational: bool = False, dedup: bool = True, model_filter: Callable[[Model], bool] | None = None,
                 seed: int | None = None) -> None:
        if variational and dedup:
            raise ValueError("Random: dedup is not supported in variational mode; pass dedup=False with "
                             "variational=True")
        if model_filter is not None and not callable(model_filter):
            raise TypeError(f"Random: model_filter must be a callable model -> bool, got {model_filter!r}")
        self.variational, self.dedup, self.filter = variational, dedup, model_filter
        self.seed = seed
        self.dedup_retries = DEDUP_RETRIES

    def _accept(self, model: Model) -> bool:
        if self.filter is None:
            return True
        return bool(self.filter(model))

    def run(self, base_model: Model, applied_mutators: list) -> None:
        rng = np.random.RandomState(self.seed)
        if self.variational:
            sampler = _RandomSampler(rng)
            while wait_for_resource():
                model = base_model
                try:
                    for mutator in applied_mutators:
                        saved = mutator.sampler
                        model = mutator.bind_sampler(sampler).apply(model)
                        mutator.sampler = saved
                    model.freeze()
                except InvalidMutation as e:
                    log.warning("invalid model skipped: %s", e)
                    continue
                if self._accept(model):
                    submit_models(model)
            return
        space = space_of(base_model, applied_mutators)
        seen = {sample_key(m.sample) for m in list_models()}  # resume: what the store already has
        duplicates = 0
        while True:
            if not wait_for_resource():
                return
            sample = random_sample(space, rng)
            if self.dedup:
                key = sample_key(sample)
                if key in seen:
                    duplicates += 1
                    if duplicates > self.dedup_retries:
                        log.info("Random: %d consecutive duplicates; the space looks exhausted, stopping",
                                 self.dedup_retries)
                        return
                    continue
                seen.add(key)
            duplicates = 0
            try:
                model = model_of(base_model, applied_mutators, sample).freeze()
            except InvalidMutation as e:
                log.warning("invalid model skipped: %s", e)
                continue
            if self._accept(model):
                submit_models(model)
            elif get_execution_engine().budget_exhausted():
                return
