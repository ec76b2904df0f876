"""Random search spaces (every type, nesting, degenerate ranges) through every core tuner:
suggestions must always be legal parameter sets of the space."""
import math

import numpy as np
import pytest

from nniray.search_space import parse
from nniray.strategies.anneal import AnnealTuner
from nniray.strategies.evolution import EvolutionTuner
from nniray.strategies.random_tuner import RandomTuner
from nniray.strategies.tpe import TpeTuner


def random_param(rng, depth):
    t = rng.choice(["choice", "randint", "uniform", "quniform", "loguniform", "qloguniform",
                    "normal", "qnormal", "lognormal", "qlognormal", "nested"])
    lo = float(rng.choice([-3.0, 0.0, 0.5, 2.0]))
    span = float(rng.choice([1e-3, 0.5, 1.0, 10.0, 1000.0]))
    q = float(rng.choice([0.01, 0.5, 1.0, 7.0]))
    if t == "nested" and depth < 2:
        opts = [{"_name": f"o{i}", **{f"p{j}": random_param(rng, depth + 1) for j in range(int(rng.integers(0, 3)))}}
                for i in range(int(rng.integers(1, 4)))]
        return {"_type": "choice", "_value": opts + ["plain"]}
    if t in ("choice", "nested"):
        return {"_type": "choice", "_value": list(rng.choice([1, 2.5, "a", "b"], size=int(rng.integers(1, 5))))}
    if t == "randint":
        a = int(rng.integers(-5, 5))
        return {"_type": "randint", "_value": [a, a + int(rng.integers(1, 20))]}
    if t in ("uniform", "quniform"):
        return {"_type": t, "_value": [lo, lo + span] + ([q] if t == "quniform" else [])}
    if t in ("loguniform", "qloguniform"):
        a = abs(lo) + 0.01
        return {"_type": t, "_value": [a, a + span] + ([q] if t == "qloguniform" else [])}
    sigma = float(rng.choice([1e-3, 0.5, 1.0, 3.0]))  # (exp of a huge lognormal sigma overflows in the prior sampler)
    return {"_type": t, "_value": [lo, sigma] + ([q] if t.startswith("q") else [])}


def legal(space, p):
    flat = space.flatten(p)  # raises on unknown choice / missing key
    for prm in space.walk():
        if prm.key not in flat:
            continue
        x, v = flat[prm.key], prm.value
        assert math.isfinite(x)
        if prm.type == "randint":
            assert v[0] <= x < v[1] and x == int(x)
        elif prm.type in ("uniform", "quniform", "loguniform", "qloguniform"):
            assert v[0] <= x <= v[1], (prm.key, x, v)
            if prm.type.startswith("q") and x not in (v[0], v[1]):
                assert math.isclose(x / v[2], round(x / v[2]), rel_tol=1e-9, abs_tol=1e-9)
        elif prm.type in ("lognormal", "qlognormal"):
            assert x >= 0
        if prm.type in ("qnormal", "qlognormal"):
            assert math.isclose(x / v[2], round(x / v[2]), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("case", range(int(__import__("os").environ.get("FUZZ_CASES", "12"))))
def test_random_spaces_through_every_tuner(case, caplog):
    rng = np.random.default_rng(case)
    raw = {f"k{i}": random_param(rng, 0) for i in range(int(rng.integers(1, 5)))}
    space = parse(raw)
    for tuner in (TpeTuner(seed=case, tpe_args={"n_startup_jobs": 3}), AnnealTuner(seed=case),
                  EvolutionTuner(seed=case, population_size=4), RandomTuner(seed=case)):
        tuner.update_search_space(raw)
        for i in range(25):
            p = tuner.generate_parameters(i)
            legal(space, p)
            tuner.receive_trial_result(i, p, float(rng.normal()))
            tuner.trial_end(i, True)
    assert "TPE model failed" not in caplog.text  # no silent fallback to random
