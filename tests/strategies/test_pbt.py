"""PBTTuner: synchronous steps, checkpoint directories, exploit and explore."""
from __future__ import annotations

import os

import pytest

from nniray.search_space import SearchSpaceError
from nniray.strategies.pbt import PBTTuner, default_checkpoint_dir
from nniray.strategies.registry import create_algorithm
from nniray.tuner import NoMoreTrialError

SPACE = {
    "lr": {"_type": "uniform", "_value": [0.0, 10.0]},
    "layers": {"_type": "randint", "_value": [1, 6]},
    "opt": {"_type": "choice", "_value": ["adam", "sgd", "rmsprop"]},
}


class Ids:
    def __init__(self):
        self.n = 0

    def take(self, k):
        out = list(range(self.n, self.n + k))
        self.n += k
        return out


def make(tmp_path, **kw):
    kw.setdefault("seed", 0)
    t = PBTTuner(all_checkpoint_dir=str(tmp_path), **kw)
    t.update_search_space(SPACE)
    return t


def run_step(t, ids, score):
    """Hand out a full step, finish every trial with ``score(params)``; returns {pid: params}."""
    pids = ids.take(t.population_size)
    got = t.generate_multiple_parameters(pids)
    assert len(got) == t.population_size
    issued = dict(zip(pids, got))
    for pid, params in issued.items():
        t.receive_trial_result(pid, params, score(params))
        t.trial_end(pid, True)
    return issued


def test_step_zero_directories(tmp_path):
    t = make(tmp_path, population_size=4)
    got = t.generate_multiple_parameters([10, 11, 12, 13])
    for i, params in enumerate(got):
        d = os.path.join(str(tmp_path), str(i), "0")
        assert params["load_checkpoint_dir"] == d and params["save_checkpoint_dir"] == d
        assert set(params) == set(SPACE) | {"load_checkpoint_dir", "save_checkpoint_dir"}


def test_steps_are_synchronous_and_waiting_is_not_done(tmp_path):
    t = make(tmp_path, population_size=3)
    first = t.generate_multiple_parameters([0, 1, 2, 3, 4])
    assert len(first) == 3 and t.waiting_for_step
    with pytest.raises(NoMoreTrialError, match="step 0"):
        t.generate_parameters(5)
    t.receive_trial_result(0, first[0], 0.5)
    t.trial_end(0, True)
    t.trial_end(1, False)  # failed, no result
    assert t.generate_multiple_parameters([6, 7]) == [] and t.waiting_for_step and t.step == 0
    t.receive_trial_result(2, first[2], 0.1)
    t.trial_end(2, True)
    assert t.step == 1 and not t.waiting_for_step
    nxt = t.generate_multiple_parameters([8, 9, 10, 11])
    assert len(nxt) == 3
    assert all(p["save_checkpoint_dir"].endswith(os.path.join(str(i), "1")) for i, p in enumerate(nxt))


def test_exploit_and_explore_with_known_scores(tmp_path):
    # population 5, fraction 0.2 -> one top and one bottom; factor fixed at 2.0
    t = make(tmp_path, population_size=5, fraction=0.2, factors=(2.0,), seed=1)
    ids = Ids()
    issued = run_step(t, ids, score=lambda p: p["lr"])
    order = sorted(issued.values(), key=lambda p: p["lr"])
    bottom, top = order[0], order[-1]
    bottom_idx = int(bottom["save_checkpoint_dir"].split(os.sep)[-2])
    top_idx = int(top["save_checkpoint_dir"].split(os.sep)[-2])
    step1 = t.generate_multiple_parameters(ids.take(5))
    for i, params in enumerate(step1):
        assert params["save_checkpoint_dir"] == os.path.join(str(tmp_path), str(i), "1")
        if i == bottom_idx:
            # exploit: the top member's checkpoint and hyperparameters ...
            assert params["load_checkpoint_dir"] == top["save_checkpoint_dir"]
            # ... explore: numbers times 2 (clipped to the space), the choice resampled from the options
            assert params["lr"] == pytest.approx(min(top["lr"] * 2.0, 10.0))
            assert params["layers"] == min(top["layers"] * 2, 5)
            assert params["opt"] in ("adam", "sgd", "rmsprop")
        else:
            # everyone else continues unchanged from its own checkpoint
            prev = next(p for p in issued.values() if p["save_checkpoint_dir"].split(os.sep)[-2] == str(i))
            assert params["load_checkpoint_dir"] == prev["save_checkpoint_dir"]
            assert {k: params[k] for k in SPACE} == {k: prev[k] for k in SPACE}
    assert bottom_idx != top_idx


def test_factors_are_drawn_from_the_list(tmp_path):
    t = make(tmp_path, factors=(1.2, 0.8), seed=3)
    values = {round(t.explore({"lr": 5.0, "layers": 3, "opt": "adam"})["lr"], 9) for _ in range(50)}
    assert values == {6.0, 4.0}


def test_integer_and_quantized_perturbation_moves_and_clips(tmp_path):
    t = PBTTuner(all_checkpoint_dir=str(tmp_path), factors=(1.2,), seed=0)
    t.update_search_space({"n": {"_type": "randint", "_value": [1, 4]}, "q": {"_type": "quniform", "_value": [0, 10, 2]}})
    assert t.explore({"n": 1, "q": 2.0}) == {"n": 2, "q": 4.0}   # 1*1.2 rounds back to 1: one step up
    assert t.explore({"n": 3, "q": 10.0}) == {"n": 3, "q": 10.0}  # clipped to the bounds (randint upper exclusive)
    t.factors = (0.8,)
    assert t.explore({"n": 1, "q": 0.0}) == {"n": 1, "q": 0.0}
    assert t.explore({"n": 3, "q": 6.0}) == {"n": 2, "q": 4.0}


def test_population_ten_replaces_two_and_minimize_ranks_low_first(tmp_path):
    t = make(tmp_path, population_size=10, optimize_mode="minimize", seed=2)
    ids = Ids()
    issued = run_step(t, ids, score=lambda p: p["lr"])
    by_lr = sorted(issued.values(), key=lambda p: p["lr"])
    tops = {p["save_checkpoint_dir"] for p in by_lr[:2]}
    bottoms = {int(p["save_checkpoint_dir"].split(os.sep)[-2]) for p in by_lr[-2:]}
    step1 = t.generate_multiple_parameters(ids.take(10))
    copied = {i for i, p in enumerate(step1) if p["load_checkpoint_dir"] != os.path.join(str(tmp_path), str(i), "0")}
    assert copied == bottoms
    assert all(step1[i]["load_checkpoint_dir"] in tops for i in copied)


def test_failed_member_ranks_last_and_is_replaced(tmp_path):
    t = make(tmp_path, population_size=5)
    got = t.generate_multiple_parameters([0, 1, 2, 3, 4])
    for pid in range(5):
        if pid == 2:
            t.trial_end(pid, False)  # the best hyperparameters, but it crashed
        else:
            t.receive_trial_result(pid, got[pid], {"default": 1.0 + pid})
            t.trial_end(pid, True)
    step1 = t.generate_multiple_parameters(list(range(5, 10)))
    assert step1[2]["load_checkpoint_dir"] == got[4]["save_checkpoint_dir"]  # copies the best (pid 4)


def test_default_checkpoint_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NNI_LOG_DIRECTORY", str(tmp_path / "log"))
    assert default_checkpoint_dir() == str(tmp_path / "log" / "checkpoint")
    assert PBTTuner().all_checkpoint_dir == str(tmp_path / "log" / "checkpoint")
    monkeypatch.delenv("NNI_LOG_DIRECTORY")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_checkpoint_dir() == os.path.join(str(tmp_path), "nniray", "checkpoint")


def test_import_data_resumes_after_the_last_complete_step(tmp_path):
    t = make(tmp_path, population_size=3, factors=(2.0,))
    ids = Ids()
    step0 = run_step(t, ids, score=lambda p: p["lr"])
    step1 = run_step(t, ids, score=lambda p: p["lr"])
    records = [{"parameter": p, "value": p["lr"]} for p in list(step0.values()) + list(step1.values())]
    records.append({"parameter": {**next(iter(step1.values())), "save_checkpoint_dir": str(tmp_path / "0" / "2")},
                    "value": 1.0})  # step 2 incomplete: ignored
    for p in step1.values():  # trials save their checkpoints there (NNI resumes only when they exist)
        os.makedirs(p["save_checkpoint_dir"], exist_ok=True)
    resumed = PBTTuner(all_checkpoint_dir=str(tmp_path), population_size=3, factors=(2.0,), seed=0)
    resumed.update_search_space(SPACE)
    resumed.import_data(records)
    assert resumed.step == 2
    got = resumed.generate_multiple_parameters([100, 101, 102])
    assert [p["save_checkpoint_dir"] for p in got] == [os.path.join(str(tmp_path), str(i), "2") for i in range(3)]
    assert {p["load_checkpoint_dir"] for p in got} <= {p["save_checkpoint_dir"] for p in step1.values()}


def test_bad_args_and_space(tmp_path):
    for kwargs, field in (({"population_size": 0}, "population_size"), ({"fraction": 0.6}, "fraction"),
                          ({"fraction": 0}, "fraction"), ({"factors": ()}, "factors"), ({"factors": (1.2, -1)}, "factors"),
                          ({"optimize_mode": "best"}, "optimize_mode")):
        with pytest.raises(ValueError, match=field):
            PBTTuner(all_checkpoint_dir=str(tmp_path), **kwargs)
    with pytest.raises(SearchSpaceError, match="reserved"):
        PBTTuner(all_checkpoint_dir=str(tmp_path)).update_search_space(
            {"save_checkpoint_dir": {"_type": "choice", "_value": ["a"]}})
    with pytest.raises(SearchSpaceError, match="nested"):
        PBTTuner(all_checkpoint_dir=str(tmp_path)).update_search_space(
            {"m": {"_type": "choice", "_value": [{"_name": "a", "x": {"_type": "uniform", "_value": [0, 1]}}]}})


def test_registry_builds_it(tmp_path):
    t = create_algorithm("tuner", "PBTTuner", {"optimize_mode": "maximize", "all_checkpoint_dir": str(tmp_path),
                                               "population_size": 4, "factors": [1.2, 0.8], "fraction": 0.25})
    assert isinstance(t, PBTTuner) and t.factors == (1.2, 0.8) and t.population_size == 4
