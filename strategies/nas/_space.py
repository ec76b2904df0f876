"""Helpers shared by the built-in strategies: the space of a model, sampling, building models."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nniray.mutable import LabeledMutable

from .base import InlineMutator, Model, Mutator, get_targeted_model


def space_of(base_model: Model, applied_mutators: Sequence[Mutator]) -> dict[str, LabeledMutable]:
    """The leaves behind the mutators (inline mutators know theirs)."""
    out = {}
    for m in applied_mutators:
        if not isinstance(m, InlineMutator):
            raise TypeError(f"mutator {m.label!r} ({type(m).__name__}) is a graph mutator; the built-in strategies "
                            f"work on inline choices (LayerChoice/InputChoice/ValueChoice/Repeat/Cell)")
        out[m.label] = m.leaf
    return out


def random_sample(space: dict[str, LabeledMutable], rng: np.random.RandomState) -> dict:
    return {label: leaf._random_value(rng) for label, leaf in space.items()}


def finite_candidates(space: dict[str, LabeledMutable], strategy: str) -> dict[str, list]:
    out = {}
    for label, leaf in space.items():
        try:
            out[label] = leaf.grid_values()
        except ValueError as e:
            raise ValueError(f"{strategy} needs a finite space: {e}") from None
    return out


def model_of(base_model: Model, applied_mutators: Sequence[Mutator], sample: dict) -> Model:
    return get_targeted_model(base_model, applied_mutators, sample)
