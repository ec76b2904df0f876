"""The strategy-as-tuner adapter, driven as the controller drives it (no Ray)."""
import threading

import pytest

import nniray.mutable as m
from nniray.nas.execution.tuner import NasStrategyTuner, StrategyError, encode_payload
from nniray.strategies.nas import BaseStrategy, GridSearch, Random, RegularizedEvolution
from nniray.tuner import NoMoreTrialError

SPACE = {"a": m.Categorical([0, 1, 2], label="a"), "b": m.Categorical(["x", "y"], label="b")}


def _tuner(strategy, concurrency=2, max_models=None):
    t = NasStrategyTuner(encode_payload({"strategy": strategy, "space": SPACE, "concurrency": concurrency,
                                         "max_models": max_models}))
    t.update_search_space({})
    return t


def _drive(tuner, score, limit=100):
    """A minimal controller: fill free slots, report, end trials; returns the parameters seen."""
    seen, pid = [], 0
    while len(seen) < limit:
        try:
            params = tuner.generate_multiple_parameters([pid, pid + 1])
        except NoMoreTrialError:
            return seen
        for i, p in enumerate(params):
            seen.append(p)
            tuner.receive_trial_result(pid + i, p, score(p))
            tuner.trial_end(pid + i, True)
        pid += 2
    return seen


def test_grid_through_the_tuner_protocol_then_no_more():
    seen = _drive(_tuner(GridSearch(shuffle=False)), lambda p: p["a"])
    assert seen == [{"a": a, "b": b} for a in range(3) for b in "xy"]


def test_import_data_rebuilds_strategy_state_on_resume():
    done = [{"parameter": {"a": 0, "b": "x"}, "value": 1.0}, {"parameter": {"a": 0, "b": "y"}, "value": 2.0}]
    t = _tuner(GridSearch(shuffle=False))
    t.import_data(done)
    seen = _drive(t, lambda p: p["a"])
    assert {"a": 0, "b": "x"} not in seen and len(seen) == 4  # the grid continues; nothing repeats
    r = _tuner(Random(seed=0))
    r.import_data(done)
    seen = _drive(r, lambda p: 0.0)
    assert len(seen) == 4 and {"a": 0, "b": "y"} not in seen  # dedup knows the stored models


def test_evolution_waits_for_results_without_blocking_the_host():
    t = _tuner(RegularizedEvolution(population_size=3, sample_size=2, cycles=5, seed=0), concurrency=2)
    first = t.generate_multiple_parameters([0, 1, 2])
    assert len(first) == 3  # the first population is submitted regardless of concurrency
    assert t.generate_multiple_parameters([3]) == []  # waiting for results: an empty answer, not a hang
    for i, p in enumerate(first):
        t.receive_trial_result(i, p, float(p["a"]))
        t.trial_end(i, True)
    seen = _drive_from(t, 3)
    assert len(first) + len(seen) == 5


def _drive_from(t, pid):
    seen = []
    while True:
        try:
            params = t.generate_multiple_parameters([pid])
        except NoMoreTrialError:
            return seen
        for p in params:
            seen.append(p)
            t.receive_trial_result(pid, p, 1.0)
            t.trial_end(pid, True)
        pid += 1


class Boom(BaseStrategy):
    def run(self, base_model, applied_mutators):
        raise KeyError("no such thing")


def test_a_raising_strategy_becomes_a_clear_error():
    with pytest.raises(StrategyError, match="Boom raised: KeyError"):
        _tuner(Boom()).generate_multiple_parameters([0])
