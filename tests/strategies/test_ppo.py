"""PPOTuner: valid suggestions, learning on a toy problem, reproducibility, discretisation."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")

from nniray.search_space import parse
from nniray.strategies.ppo import N_BINS, PPOTuner, _decode, _encode, _n_actions
from nniray.strategies.registry import AlgorithmError, create_algorithm

SPACE = {
    "opt": {"_type": "choice", "_value": ["sgd", "adam", {"_name": "rms", "rho": {"_type": "uniform", "_value": [0.8, 1.0]}}]},
    "lr": {"_type": "loguniform", "_value": [1e-5, 1e-1]},
    "units": {"_type": "randint", "_value": [16, 512]},
    "layers": {"_type": "randint", "_value": [1, 4]},
    "drop": {"_type": "quniform", "_value": [0.0, 0.5, 0.1]},
    "bs": {"_type": "qloguniform", "_value": [8, 256, 8]},
    "w": {"_type": "normal", "_value": [0.0, 2.0]},
    "m": {"_type": "qlognormal", "_value": [0.0, 1.0, 0.5]},
}


def test_parameters_are_valid_for_every_type_and_nested_choice():
    tuner = create_algorithm("tuner", "PPOTuner", {"seed": 0})
    tuner.update_search_space(SPACE)
    space = parse(SPACE)
    for i in range(40):
        p = tuner.generate_parameters(i)
        flat = space.flatten(p)  # raises if a value is not in the space
        assert 1e-5 <= p["lr"] <= 1e-1 and 16 <= p["units"] < 512 and 1 <= p["layers"] < 4
        assert isinstance(p["units"], int) and isinstance(p["layers"], int)
        assert 0 <= p["drop"] <= 0.5 and math.isclose(p["drop"] / 0.1, round(p["drop"] / 0.1), abs_tol=1e-9)
        assert 8 <= p["bs"] <= 256 and p["bs"] % 8 == 0
        assert p["m"] % 0.5 == 0
        if isinstance(p["opt"], dict):
            assert p["opt"]["_name"] == "rms" and 0.8 <= p["opt"]["rho"] <= 1.0
        assert set(flat) >= {"lr", "units", "layers", "drop", "bs", "w", "m", "opt"}
        tuner.receive_trial_result(i, p, float(i % 3))


def test_discretisation_round_trips_every_action():
    rng = np.random.default_rng(0)
    for p in parse(SPACE).walk():
        n = _n_actions(p)
        assert n == (len(p.value) if p.type == "choice" else min(N_BINS, int(p.value[1] - p.value[0]))
                     if p.type == "randint" else N_BINS)
        if p.type.startswith("q"):
            continue  # rounding to q may move a value across a bin edge
        for a in range(n):
            assert _encode(p, _decode(p, a, float(rng.random()))) == a


def _toy(tuner, n, best="c", maximize=True):
    space = {"x": {"_type": "choice", "_value": ["a", "b", "c", "d", "e"]},
             "y": {"_type": "uniform", "_value": [0.0, 1.0]}}
    tuner.update_search_space(space)
    rng = np.random.default_rng(0)
    p0 = tuner.action_probabilities(0)[2]
    for i in range(n):
        p = tuner.generate_parameters(i)
        good = 1.0 if p["x"] == best else 0.0
        r = good + 0.1 * rng.normal()
        tuner.receive_trial_result(i, p, r if maximize else -r)
    return p0, tuner.action_probabilities(0)[2]


def test_learns_which_option_is_best():
    tuner = PPOTuner(trials_per_update=20, minibatch_size=4, lr=3e-3, seed=0)
    before, after = _toy(tuner, 160)
    assert abs(before - 0.2) < 0.01  # starts near uniform over 5 options
    assert tuner.n_updates == 8
    assert after > 0.6


def test_learns_in_minimize_mode():
    tuner = PPOTuner(optimize_mode="minimize", trials_per_update=20, lr=3e-3, seed=1)
    before, after = _toy(tuner, 160, maximize=False)
    assert after > before + 0.3


def test_seed_reproducible_across_updates():
    def run(seed):
        t = PPOTuner(trials_per_update=4, minibatch_size=2, seed=seed)
        t.update_search_space(SPACE)
        out = []
        for i in range(12):
            p = t.generate_parameters(i)
            out.append(p)
            t.receive_trial_result(i, p, float(p["layers"]) + p["drop"])
        return out
    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert a != c


def test_failed_trials_are_dropped_and_import_data_feeds_updates():
    t = PPOTuner(trials_per_update=4, minibatch_size=2, seed=0)
    t.update_search_space(SPACE)
    p = t.generate_parameters(0)
    t.trial_end(0, False)
    assert not t._pending
    data = [{"parameter": t.generate_parameters(i + 1), "value": float(i)} for i in range(8)]
    t._pending.clear()
    t.import_data(data)
    assert t.n_updates == 2
    with pytest.raises(ValueError, match=r"import_data\[0\]"):
        t.import_data([{"parameter": {"lr": 0.1}, "value": 1.0}])


@pytest.mark.parametrize("args,field", [({"trials_per_update": 10, "minibatch_size": 4}, "minibatch_size"),
                                        ({"gamma": 1.5}, "gamma"), ({"epochs_per_update": 0}, "epochs_per_update"),
                                        ({"optimize_mode": "best"}, "optimize_mode"), ({"ent_coef": -1}, "ent_coef")])
def test_bad_class_args_name_the_field(args, field):
    with pytest.raises(AlgorithmError, match=field):
        create_algorithm("tuner", "PPOTuner", args)


def test_generate_before_search_space_is_a_clear_error():
    with pytest.raises(RuntimeError, match="update_search_space"):
        PPOTuner().generate_parameters(0)
