"""Parameter importance and slice data: the forest finds the parameter that drives the metric,
choices are one-hot encoded and summed back, and the routes read a bounded sample from a real
SQLite store through the app."""
from __future__ import annotations

import random

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("fastapi")

from nniray.web.analysis import importance_of  # noqa: E402


def _samples(n: int = 300, seed: int = 1):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p = {"lr": rng.uniform(0, 1), "noise": rng.uniform(0, 1), "opt": rng.choice(["sgd", "adam", "rmsprop"])}
        value = 3 * p["lr"] + (1.5 if p["opt"] == "adam" else 0) + 0.05 * rng.random()
        out.append((p, value))
    return out


def test_the_parameter_that_drives_the_metric_ranks_first():
    imp = importance_of(_samples())
    assert set(imp) == {"lr", "noise", "opt"}
    assert imp["lr"] > imp["opt"] > imp["noise"]
    assert sum(imp.values()) == pytest.approx(1.0)


def test_choices_are_one_hot_encoded_and_summed_back_to_the_parameter():
    rng = random.Random(3)
    samples = [({"opt": c, "x": rng.random()}, 10.0 if c == "adam" else 0.0)
               for c in (rng.choice(["sgd", "adam", {"_name": "nested", "k": 1}]) for _ in range(200))]
    imp = importance_of(samples)
    assert set(imp) == {"opt", "x"}  # no per-category keys leak out
    assert imp["opt"] > 0.9


def test_a_constant_metric_gives_zero_importance():
    samples = [({"a": i, "b": "x"}, 1.0) for i in range(10)]
    assert importance_of(samples) == {"a": 0.0, "b": 0.0}


def test_missing_values_of_conditional_parameters_do_not_fail():
    samples = [({"a": i / 10, **({"b": i} if i % 2 else {})}, i / 10) for i in range(40)]
    imp = importance_of(samples)
    assert imp["a"] > 0
