"""GPTuner, SMACTuner, MetisTuner, DNGOTuner: contracts shared by the model-based tuners."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nniray.search_space import SearchSpaceError, parse
from nniray.strategies import registry
from nniray.strategies.dngo import DNGOTuner
from nniray.strategies.gp import GPTuner
from nniray.strategies.metis import MetisTuner
from nniray.strategies.smac_tuner import SMACTuner

BRANIN_SPACE = {"x": {"_type": "uniform", "_value": [-5, 10]}, "y": {"_type": "uniform", "_value": [0, 15]}}
BRANIN_MIN = 0.397887357729739


def branin(p):
    x, y = p["x"], p["y"]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x * x + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


# Every type that GP and DNGO take; Metis and SMAC get the subset they support.
MIXED = {
    "lr": {"_type": "loguniform", "_value": [1e-4, 1.0]},
    "qlr": {"_type": "qloguniform", "_value": [1, 1000, 10]},
    "drop": {"_type": "quniform", "_value": [0.0, 0.5, 0.1]},
    "layers": {"_type": "randint", "_value": [2, 6]},
    "width": {"_type": "choice", "_value": [16, 32.5, 64]},
    "m": {"_type": "uniform", "_value": [0.0, 1.0]},
}
SUPPORTED = {
    "GPTuner": MIXED,
    "DNGOTuner": MIXED,
    "MetisTuner": {k: v for k, v in MIXED.items() if k not in ("lr", "qlr")},
    "SMAC": {k: v for k, v in MIXED.items() if k != "qlr"},
}


def mixed_objective(p):
    v = (p["m"] - 0.3) ** 2 + (p["layers"] - 4) ** 2 * 0.1 + (p["drop"] - 0.2) ** 2 + (p["width"] == 32.5) * 0.2
    if "lr" in p:
        v += (math.log10(p["lr"]) + 2) ** 2 * 0.1
    return v


# Small settings keep DNGO and SMAC quick; they do not change the code paths.
FAST = {"GPTuner": {}, "MetisTuner": {}, "SMAC": {},
        "DNGOTuner": {"trials_per_update": 5, "num_epochs_per_training": 60, "sample_size": 200}}
ALL = list(FAST)


def make(name, seed=0, **kw):
    args = dict(FAST[name], optimize_mode="minimize", seed=seed)
    args.update(kw)
    return registry.create_algorithm("tuner", name, args)


def run(tuner, space, f, n, start_id=0):
    tuner.update_search_space(space)
    out = []
    for i in range(start_id, start_id + n):
        p = tuner.generate_parameters(i)
        v = f(p)
        tuner.receive_trial_result(i, p, v)
        tuner.trial_end(i, True)
        out.append((p, v))
    return out


# ---------------------------------------------------------------------------------------
# classArgs and search-space validation
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,kwargs,field", [
    (GPTuner, {"utility": "pi"}, "utility"),
    (GPTuner, {"kappa": -1}, "kappa"),
    (GPTuner, {"xi": "a"}, "xi"),
    (GPTuner, {"nu": 2.0}, "nu"),
    (GPTuner, {"alpha": 0}, "alpha"),
    (GPTuner, {"cold_start_num": -1}, "cold_start_num"),
    (GPTuner, {"selection_num_warm_up": 0}, "selection_num_warm_up"),
    (GPTuner, {"selection_num_starting_points": 1.5}, "selection_num_starting_points"),
    (GPTuner, {"optimize_mode": "max"}, "optimize_mode"),
    (GPTuner, {"seed": -3}, "seed"),
    (MetisTuner, {"exploration_probability": 1.5}, "exploration_probability"),
    (MetisTuner, {"no_resampling": "yes"}, "no_resampling"),
    (MetisTuner, {"no_candidates": 1}, "no_candidates"),
    (MetisTuner, {"cold_start_num": -2}, "cold_start_num"),
    (MetisTuner, {"selection_num_starting_points": 0}, "selection_num_starting_points"),
    (DNGOTuner, {"sample_size": 0}, "sample_size"),
    (DNGOTuner, {"trials_per_update": 0}, "trials_per_update"),
    (DNGOTuner, {"num_epochs_per_training": -1}, "num_epochs_per_training"),
    (SMACTuner, {"config_dedup": "no"}, "config_dedup"),
    (SMACTuner, {"optimize_mode": "up"}, "optimize_mode"),
])
def test_bad_class_args_name_the_argument(cls, kwargs, field):
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


def test_nni_defaults_are_accepted_and_kept():
    gp = GPTuner()
    assert (gp.optimize_mode.value, gp.utility, gp.kappa, gp.xi, gp.nu, gp.alpha, gp.cold_start_num,
            gp.selection_num_warm_up, gp.selection_num_starting_points) == \
        ("maximize", "ei", 5, 0, 2.5, 1e-6, 10, 100000, 250)
    m = MetisTuner()
    assert (m.no_resampling, m.no_candidates, m.selection_num_starting_points, m.cold_start_num,
            m.exploration_probability) == (True, False, 600, 10, 0.9)
    d = DNGOTuner()
    assert (d.sample_size, d.trials_per_update, d.num_epochs_per_training) == (1000, 20, 500)
    assert SMACTuner().config_dedup is False


def test_registry_refuses_unknown_class_arg():
    with pytest.raises(registry.AlgorithmError, match="classArgs.kapa.*kappa"):
        registry.create_algorithm("tuner", "GPTuner", {"kapa": 1})


@pytest.mark.parametrize("name,space,match", [
    ("GPTuner", {"a": {"_type": "normal", "_value": [0, 1]}}, r"GPTuner does not support _type 'normal' \(key 'a'\)"),
    ("GPTuner", {"a": {"_type": "choice", "_value": ["x", "y"]}}, r"GPTuner supports only numerical choice.*'a'"),
    ("GPTuner", {"a": {"_type": "choice", "_value": [{"_name": "p", "b": {"_type": "uniform", "_value": [0, 1]}}]}},
     "GPTuner does not support nested choice"),
    ("MetisTuner", {"a": {"_type": "loguniform", "_value": [1, 10]}}, "MetisTuner does not support _type 'loguniform'"),
    ("DNGOTuner", {"a": {"_type": "qnormal", "_value": [0, 1, 1]}}, "DNGOTuner does not support _type 'qnormal'"),
    ("DNGOTuner", {"a": {"_type": "choice", "_value": [1, "b"]}}, "DNGOTuner supports only numerical choice"),
    ("SMAC", {"a": {"_type": "qloguniform", "_value": [1, 10, 1]}}, "SMAC does not support _type 'qloguniform'"),
    ("SMAC", {"a": {"_type": "choice", "_value": [{"_name": "p"}, {"_name": "q"}]}}, "SMAC does not support nested"),
])
def test_unsupported_search_space_is_refused_by_name(name, space, match):
    with pytest.raises(SearchSpaceError, match=match):
        make(name).update_search_space(space)


def test_smac_takes_string_choices():
    t = make("SMAC")
    t.update_search_space({"opt": {"_type": "choice", "_value": ["sgd", "adam"]},
                           "n": {"_type": "randint", "_value": [1, 3]}})
    seen = {t.generate_parameters(i)["opt"] for i in range(4)}
    assert seen <= {"sgd", "adam"}


# ---------------------------------------------------------------------------------------
# Suggestions: legal values, reproducibility, resume, parallel
# ---------------------------------------------------------------------------------------

def _check_legal(space, p):
    assert set(p) == set(space)
    for k, spec in space.items():
        t, v = spec["_type"], spec["_value"]
        x = p[k]
        if t == "randint":
            assert type(x) is int and v[0] <= x < v[1]
        elif t == "choice":
            assert x in v and type(x) is type(v[v.index(x)])
        else:
            assert type(x) is float and v[0] <= x <= v[1]
            if t.startswith("q"):
                assert x in (v[0], v[1]) or abs(x / v[2] - round(x / v[2])) < 1e-9


@pytest.mark.parametrize("name", ALL)
def test_suggestions_are_legal_through_model_phase(name):
    space = SUPPORTED[name]
    hist = run(make(name, seed=1), space, mixed_objective, 14)
    for p, _ in hist:
        _check_legal(space, p)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_suggestions(name):
    a = run(make(name, seed=7), BRANIN_SPACE, branin, 13)
    b = run(make(name, seed=7), BRANIN_SPACE, branin, 13)
    assert [p for p, _ in a] == [p for p, _ in b]
    c = run(make(name, seed=8), BRANIN_SPACE, branin, 13)
    assert [p for p, _ in a] != [p for p, _ in c]


@pytest.mark.parametrize("name", ALL)
def test_import_data_equals_receiving_the_results(name):
    live = make(name, seed=3)
    hist = run(live, BRANIN_SPACE, branin, 12)
    resumed = make(name, seed=3)
    resumed.update_search_space(BRANIN_SPACE)
    resumed.import_data([{"parameter": p, "value": v} for p, v in hist])
    # The live tuner's next suggestion is model-based; the resumed one must be the same.
    assert resumed.generate_parameters(100) == live.generate_parameters(100)


def test_import_data_skips_bad_records():
    t = make("GPTuner")
    t.update_search_space(BRANIN_SPACE)
    t.import_data([{"parameter": {"x": 1.0, "y": 2.0}, "value": {"default": 3.0}},
                   {"parameter": {"x": 1.0, "y": 2.0}, "value": "oops"},
                   {"parameter": {"x": 1.0}, "value": 1.0},
                   {"value": 1.0}])
    assert len(t._loss) == 1 and t._loss[0] == 3.0


@pytest.mark.parametrize("name", ALL)
def test_parallel_suggestions_differ(name):
    t = make(name, seed=2)
    run(t, BRANIN_SPACE, branin, 12)
    batch = [t.generate_parameters(100 + i) for i in range(3)]
    assert len({(p["x"], p["y"]) for p in batch}) == 3


def test_maximize_mode_follows_the_sign():
    """Maximising -branin must suggest exactly what minimising branin suggests."""
    lo = run(make("GPTuner", seed=4), BRANIN_SPACE, branin, 13)
    hi = run(make("GPTuner", seed=4, optimize_mode="maximize"), BRANIN_SPACE, lambda p: -branin(p), 13)
    assert [p for p, _ in lo] == [p for p, _ in hi]


def test_search_space_update_models_the_fitting_observations():
    t = make("GPTuner")
    hist = run(t, BRANIN_SPACE, branin, 12)
    t.update_search_space({"x": {"_type": "uniform", "_value": [-5, 10]}})  # extra key y: still fits
    assert len(t._loss) == len(hist) and t._X.shape == (12, 1)
    t.update_search_space(dict(BRANIN_SPACE, z={"_type": "uniform", "_value": [0, 1]}))  # no z: none fit
    assert len(t._loss) == 0
    _check_legal(dict(BRANIN_SPACE, z={"_type": "uniform", "_value": [0, 1]}), t.generate_parameters(50))
    t.update_search_space(BRANIN_SPACE)
    assert len(t._loss) == len(hist)


def test_metis_reports_a_reason_and_predicted_optimum():
    t = make("MetisTuner", seed=0, cold_start_num=5)
    run(t, BRANIN_SPACE, branin, 8)
    assert t.last_reason in ("exploration", "exploitation (GMM)", "exploitation (lowest mean)", "random")
    assert set(t.predicted_optimum) == {"x", "y"}


def test_smac_config_dedup_never_repeats():
    space = {"a": {"_type": "choice", "_value": [1, 2, 3]}, "b": {"_type": "randint", "_value": [0, 2]}}
    t = make("SMAC", config_dedup=True)
    hist = run(t, space, lambda p: p["a"] + p["b"], 6)
    assert len({(p["a"], p["b"]) for p, _ in hist}) == 6


def test_smac_quantised_space_does_not_repeat():
    # A quantised Float never matched SMAC's own configuration, so SMAC proposed it forever.
    space = {"d": {"_type": "quniform", "_value": [0.0, 0.8, 0.05]}, "m": {"_type": "uniform", "_value": [0, 1]}}
    hist = run(make("SMAC"), space, lambda p: (p["d"] - 0.3) ** 2 + p["m"], 12)
    assert len({(p["d"], p["m"]) for p, _ in hist}) == 12


def test_smac_leaves_no_files_behind(tmp_path, monkeypatch):
    import gc
    import os

    monkeypatch.chdir(tmp_path)
    t = make("SMAC")
    run(t, BRANIN_SPACE, branin, 11)
    tmp = t._tmp
    assert os.path.isdir(tmp) and list(tmp_path.iterdir()) == []
    del t
    gc.collect()
    assert not os.path.exists(tmp)


# ---------------------------------------------------------------------------------------
# Quality: better than random search on Branin at 40 evaluations
# ---------------------------------------------------------------------------------------

def _random_regret(seed, n=40):
    sp = parse(BRANIN_SPACE)
    rng = np.random.default_rng(seed)
    return min(branin(sp.sample(rng)) for _ in range(n)) - BRANIN_MIN


def _tuner_regret(name, seed, n=40, **kw):
    return min(v for _, v in run(make(name, seed=seed, **kw), BRANIN_SPACE, branin, n)) - BRANIN_MIN


SEEDS = (0, 1, 2)


@pytest.mark.parametrize("name", ["GPTuner", "MetisTuner"])
def test_beats_random_on_branin(name):
    random_median = np.median([_random_regret(s) for s in SEEDS])
    ours = np.median([_tuner_regret(name, s) for s in SEEDS])
    assert ours < random_median


@pytest.mark.slow
@pytest.mark.parametrize("name,kw", [("SMAC", {}), ("DNGOTuner", {"trials_per_update": 20,
                                                                    "num_epochs_per_training": 500,
                                                                    "sample_size": 1000})])
def test_beats_random_on_branin_slow(name, kw):
    random_median = np.median([_random_regret(s) for s in SEEDS])
    ours = np.median([_tuner_regret(name, s, **kw) for s in SEEDS])
    assert ours < random_median
