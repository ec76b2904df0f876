"""``GridSearch(shuffle=True)``: every combination in turn; ``shuffle`` randomizes the order of
the candidates within each label (the last label varies fastest)."""
from __future__ import annotations

import itertools

import numpy as np

from ._space import finite_candidates, model_of, space_of
from .base import BaseStrategy, list_models, sample_key, submit_models, wait_for_resource


class GridSearch(BaseStrategy):
    def __init__(self, shuffle: bool = True, seed: int | None = None) -> None:
        self.shuffle, self.seed = shuffle, seed

    def run(self, base_model, applied_mutators) -> None:
        space = finite_candidates(space_of(base_model, applied_mutators), "GridSearch")
        rng = np.random.RandomState(self.seed)
        names = list(space)
        values = [list(space[n]) for n in names]
        if self.shuffle:
            for v in values:
                rng.shuffle(v)
        done = {sample_key(m.sample) for m in list_models()}  # resume: skip what was evaluated
        for combo in itertools.product(*values):
            sample = dict(zip(names, combo))
            if sample_key(sample) in done:
                continue
            if not wait_for_resource():
                return
            submit_models(model_of(base_model, applied_mutators, sample).freeze())
