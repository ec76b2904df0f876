"""Issue 10: NNI 3.0's signatures, defaults and search-space edge cases, tuner by tuner."""
from __future__ import annotations

import inspect
import json
import math
import os

import numpy as np
import pytest

from nniray.runtime.msg_dispatcher_base import CommandType
from nniray.search_space import parse
from nniray.strategies.registry import create_algorithm
from nniray.tuner import NoMoreTrialError
from nniray.utils import OptimizeMode

EDGE_SPACE = {
    "r": {"_type": "randint", "_value": [10, 11]},
    "u": {"_type": "uniform", "_value": [2.5, 2.5]},
    "l": {"_type": "loguniform", "_value": [1, 1]},
    "q": {"_type": "qloguniform", "_value": [2, 2, 1]},
    "x": {"_type": "uniform", "_value": [0, 1]},
}
# Every tuner that takes an HPO search space, with classArgs that keep the test quick.
TUNERS = {
    "TPE": {"seed": 0}, "Random": {"seed": 0}, "Anneal": {"seed": 0}, "Evolution": {"population_size": 3, "seed": 0},
    "GridSearch": {}, "GPTuner": {"cold_start_num": 2, "selection_num_warm_up": 100,
                                  "selection_num_starting_points": 2, "seed": 0},
    "SMAC": {"seed": 0}, "MetisTuner": {"cold_start_num": 2, "selection_num_starting_points": 5, "seed": 0},
    "DNGOTuner": {"sample_size": 20, "trials_per_update": 2, "num_epochs_per_training": 5, "seed": 0},
    "PBTTuner": {"population_size": 2, "seed": 0}, "TPE_legacy": {"seed": 0},
}


def _check_edge_values(p: dict) -> None:
    assert p["r"] == 10 and isinstance(p["r"], int)
    assert p["u"] == 2.5 and p["l"] == 1.0 and p["q"] == 2.0
    assert 0 <= p["x"] <= 1


@pytest.mark.parametrize("name", sorted(TUNERS))
def test_degenerate_ranges_and_one_integer_randint_work_with_every_tuner(name, tmp_path):
    args = dict(TUNERS[name])
    if name == "PBTTuner":
        args["all_checkpoint_dir"] = str(tmp_path)
    tuner = create_algorithm("tuner", name=name, class_args=args)
    tuner.update_search_space(EDGE_SPACE)
    for pid in range(5):
        try:
            p = tuner.generate_parameters(pid)
        except NoMoreTrialError:
            break
        _check_edge_values(p)
        tuner.receive_trial_result(pid, p, float(p["x"]))
        tuner.trial_end(pid, True)


@pytest.mark.parametrize("name", ["Hyperband", "BOHB"])
def test_degenerate_ranges_with_the_advisors(name):
    advisor = create_algorithm("advisor", name=name, class_args={})
    advisor.handle_initialize(EDGE_SPACE)
    advisor.handle_request_trial_jobs(3)
    sent = [json.loads(d) for c, d in advisor.drain() if c == CommandType.NewTrialJob]
    assert sent
    for job in sent:
        _check_edge_values(job["parameters"])


def test_parse_turns_a_degenerate_range_into_a_constant():
    space = parse(EDGE_SPACE)
    assert space.sample(np.random.default_rng(1)) | {"x": 0} == {"r": 10, "u": 2.5, "l": 1.0, "q": 2.0, "x": 0}


# -- signatures and defaults ------------------------------------------------------------

def _default(cls, arg):
    return inspect.signature(cls.__init__).parameters[arg].default


def test_default_optimize_modes_are_nni_3s():
    from nniray.algorithms.hpo.evolution_tuner import EvolutionTuner
    from nniray.algorithms.hpo.gp_tuner import GPTuner
    from nniray.algorithms.hpo.hyperopt_tuner import HyperoptTuner
    from nniray.algorithms.hpo.tpe_tuner import TpeTuner
    assert TpeTuner().optimize_mode is OptimizeMode.Minimize
    assert HyperoptTuner("tpe").optimize_mode is OptimizeMode.Minimize
    assert EvolutionTuner().optimize_mode is OptimizeMode.Maximize
    assert GPTuner().optimize_mode is OptimizeMode.Maximize
    assert create_algorithm("tuner", name="Anneal").optimize_mode is OptimizeMode.Minimize


def test_evolution_population_and_random_seed_positional():
    from nniray.algorithms.hpo.evolution_tuner import EvolutionTuner
    from nniray.algorithms.hpo.random_tuner import RandomTuner
    assert EvolutionTuner().population_size == 32
    a, b = RandomTuner(7), RandomTuner(seed=7)
    for t in (a, b):
        t.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    assert a.seed == 7 and a.generate_parameters(3) == b.generate_parameters(3)
    # TpeTuner(optimize_mode, seed, tpe_args) positional, as NNI 3.0
    from nniray.algorithms.hpo.tpe_tuner import TpeTuner
    t = TpeTuner("maximize", 5, {"gamma": 0.2})
    assert t.seed == 5 and t.gamma == 0.2 and t.optimize_mode is OptimizeMode.Maximize


def test_pbt_takes_nni_3_factor_and_resample_probability(tmp_path):
    t = create_algorithm("tuner", name="PBTTuner", class_args={
        "all_checkpoint_dir": str(tmp_path), "factor": 0.3, "resample_probability": 0.0, "population_size": 2})
    assert (t.factor, t.resample_probability) == (0.3, 0.0)
    assert _default(type(t), "factor") == 0.2 and _default(type(t), "resample_probability") == 0.25
    t.update_search_space({"x": {"_type": "uniform", "_value": [0, 10]}})
    # resample_probability 0: each explored value is the parent's ± 0.3 * range, clipped
    for _ in range(20):
        assert t.explore({"x": 5.0})["x"] in (2.0, 8.0)
    assert t.explore({"x": 9.0})["x"] in (6.0, 10.0)
    with pytest.raises(ValueError, match="resample_probability"):
        type(t)(all_checkpoint_dir=str(tmp_path), resample_probability=2)


ALL_TYPES_SPACE = {
    "c": {"_type": "choice", "_value": ["a", "b", "c"]},
    "r": {"_type": "randint", "_value": [0, 3]},
    "u": {"_type": "uniform", "_value": [0, 1]},
    "qu": {"_type": "quniform", "_value": [0, 1, 0.25]},
    "lu": {"_type": "loguniform", "_value": [0.01, 1]},
    "qlu": {"_type": "qloguniform", "_value": [1, 100, 1]},
    "n": {"_type": "normal", "_value": [0, 1]},
    "qn": {"_type": "qnormal", "_value": [0, 1, 0.5]},
    "ln": {"_type": "lognormal", "_value": [0, 1]},
    "qln": {"_type": "qlognormal", "_value": [0, 0.3, 0.1]},
}


def _in_domain(key, x):
    spec = ALL_TYPES_SPACE[key]
    t, v = spec["_type"], spec["_value"]
    if t == "choice":
        return x in v
    if t == "randint":
        return isinstance(x, int) and v[0] <= x < v[1]
    if t in ("uniform", "loguniform"):
        return v[0] <= x <= v[1]
    if t in ("quniform", "qloguniform"):
        return v[0] <= x <= v[1] and math.isclose(round(x / v[2]) * v[2], x, abs_tol=1e-9)
    if t in ("lognormal",):
        return x >= 0
    if t == "qlognormal":
        return x >= 0 and math.isclose(round(x / v[2]) * v[2], x, abs_tol=1e-9)
    if t == "qnormal":
        return math.isclose(round(x / v[2]) * v[2], x, abs_tol=1e-9)
    return math.isfinite(x)


@pytest.mark.parametrize("kwargs", [{}, {"factors": (1.2, 0.8)}, {"resample_probability": 0.0, "factor": 5.0}])
def test_pbt_explore_keeps_every_value_in_its_domain(tmp_path, kwargs):
    from nniray.algorithms.hpo.pbt_tuner import PBTTuner
    t = PBTTuner(all_checkpoint_dir=str(tmp_path), population_size=2, seed=3, **kwargs)
    t.update_search_space(ALL_TYPES_SPACE)
    # start at the edges (a qlognormal 0 used to become -0.1)
    params = {"c": "a", "r": 0, "u": 0.0, "qu": 0.0, "lu": 0.01, "qlu": 1.0, "n": 0.0, "qn": 0.0, "ln": 1e-9, "qln": 0.0}
    for _ in range(300):
        params = t.explore(params)
        for k, x in params.items():
            assert _in_domain(k, x), (k, x, kwargs)


def test_pbt_import_data_as_nni(tmp_path):
    from nniray.algorithms.hpo.pbt_tuner import PBTTuner
    space = {"lr": {"_type": "uniform", "_value": [0, 1]}}

    def fresh():
        t = PBTTuner(all_checkpoint_dir=str(tmp_path), population_size=2, seed=0)
        t.update_search_space(space)
        return t

    def rec(member, step, value, lr=0.5):
        d = os.path.join(str(tmp_path), str(member), str(step))
        return {"parameter": {"lr": lr, "load_checkpoint_dir": d, "save_checkpoint_dir": d}, "value": value}

    full = [rec(0, 0, 0.1), rec(1, 0, 0.9), rec(0, 1, 0.2), rec(1, 1, None)]  # step 2 of member 0 missing
    # NNI: the checkpoint dirs of the step to resume must exist, else nothing is resumed
    assert fresh().import_data(full) is None
    for r in full:
        os.makedirs(r["parameter"]["save_checkpoint_dir"], exist_ok=True)
    t = fresh()
    assert t.import_data(full + [rec(0, 2, 0.3)]) == 2  # resumes after step 1, the last complete one
    got = t.generate_multiple_parameters([10, 11])
    assert [p["save_checkpoint_dir"] for p in got] == [os.path.join(str(tmp_path), str(i), "2") for i in range(2)]
    # a record without save_checkpoint_dir abandons the whole import (NNI)
    t = fresh()
    assert t.import_data(full + [{"parameter": {"lr": 0.1}, "value": 1.0}]) is None
    assert t.step == 0


# -- GridSearch, BatchTuner, SMAC ------------------------------------------------------------

def test_gridsearch_grids_continuous_types_in_nni_3s_epochs():
    from nniray.algorithms.hpo.gridsearch_tuner import GridSearchTuner
    t = GridSearchTuner()
    # NNI 3.0's own example: choice(5, 7), normal(0, 1), quniform(2, 3, 1)
    t.update_search_space({"x": {"_type": "choice", "_value": [5, 7]}, "y": {"_type": "normal", "_value": [0, 1]},
                           "z": {"_type": "quniform", "_value": [2, 3, 1]}})
    got = [t.generate_parameters(i) for i in range(12)]
    assert [(p["x"], p["y"], p["z"]) for p in got[:4]] == [(5, 0.0, 2.0), (5, 0.0, 3.0), (7, 0.0, 2.0), (7, 0.0, 3.0)]
    ys = sorted({round(p["y"], 2) for p in got})
    assert ys == [-0.67, 0.0, 0.67]
    assert len({json.dumps(p, sort_keys=True) for p in got}) == 12  # nothing twice


def test_gridsearch_on_a_finite_q_space_ends():
    from nniray.algorithms.hpo.gridsearch_tuner import GridSearchTuner
    t = GridSearchTuner()
    t.update_search_space({"z": {"_type": "qloguniform", "_value": [1, 4, 1]}})
    seen = []
    with pytest.raises(NoMoreTrialError):
        for i in range(100):
            seen.append(t.generate_parameters(i)["z"])
    assert set(seen) <= {1.0, 2.0, 3.0, 4.0} and len(seen) == len(set(seen)) >= 3


def test_batch_tuner_takes_the_single_choice_key_whatever_its_name():
    from nniray.algorithms.hpo.batch_tuner import BatchTuner
    t = BatchTuner()
    t.update_search_space({"my_configs": {"_type": "choice", "_value": [{"a": 1}, {"a": 2}]}})
    assert t.generate_multiple_parameters([0, 1, 2]) == [{"a": 1}, {"a": 2}]
    with pytest.raises(NoMoreTrialError):
        t.generate_parameters(3)


def test_smac_exhausting_a_finite_space_ends_like_gridsearch():
    from nniray.algorithms.hpo.smac_tuner import SMACTuner
    t = SMACTuner(seed=0)
    t.update_search_space({"a": {"_type": "choice", "_value": [1, 2]}, "b": {"_type": "randint", "_value": [0, 2]}})
    seen = []
    with pytest.raises(NoMoreTrialError):
        for i in range(20):
            p = t.generate_parameters(i)
            seen.append((p["a"], p["b"]))
            t.receive_trial_result(i, p, float(i))
    assert sorted(seen) == [(1, 0), (1, 1), (2, 0), (2, 1)]


# -- HyperoptTuner and RegularizedEvolutionTuner ---------------------------------------------

@pytest.mark.parametrize("algorithm", ["tpe", "random_search", "anneal"])
def test_hyperopt_tuner_runs_nested_spaces_and_imports(algorithm):
    from nniray.algorithms.hpo.hyperopt_tuner import HyperoptTuner
    t = HyperoptTuner(algorithm, optimize_mode="minimize", parallel_optimize=True, seed=0)
    space = {"x": {"_type": "uniform", "_value": [-5, 5]},
             "c": {"_type": "choice", "_value": [{"_name": "a", "y": {"_type": "randint", "_value": [0, 3]}},
                                                  {"_name": "b"}]}}
    t.update_search_space(space)
    t.import_data([{"parameter": {"x": 1.0, "c": {"_name": "b"}}, "value": 0.0}])
    for i in range(25):
        p = t.generate_parameters(i)
        assert -5 <= p["x"] <= 5 and p["c"]["_name"] in ("a", "b")
        if p["c"]["_name"] == "a":
            assert p["c"]["y"] in (0, 1, 2)
        t.receive_trial_result(i, p, (p["x"] - 1) ** 2)
    with pytest.raises(ValueError, match="algorithm_name"):
        HyperoptTuner("bayes")


def test_tpe_legacy_name_is_the_hyperopt_tuner():
    from nniray.algorithms.hpo.hyperopt_tuner import HyperoptTuner
    assert isinstance(create_algorithm("tuner", name="TPE_legacy"), HyperoptTuner)


def test_regularized_evolution_ages_out_and_mutates():
    from nniray.algorithms.hpo.regularized_evolution_tuner import RegularizedEvolutionTuner
    t = RegularizedEvolutionTuner(population_size=3, sample_size=2, seed=0)
    t.update_search_space({"op": {"_type": "layer_choice", "_value": ["conv", "pool", "id"]},
                           "in": {"_type": "input_choice", "_value": {"candidates": ["a", "b", "c"], "n_chosen": 2}}})
    first = [t.generate_parameters(i) for i in range(3)]
    with pytest.raises(NoMoreTrialError):
        t.generate_parameters(3)  # initial population out, no result yet
    for i, p in enumerate(first):
        assert p["op"]["_value"] == ["conv", "pool", "id"][p["op"]["_idx"]] and len(p["in"]["_idx"]) == 2
        t.receive_trial_result(i, p, float(i))
    child = t.generate_parameters(4)
    t.receive_trial_result(4, child, 10.0)
    assert len(t.population) == 3 and t.population[0][0] == 1  # the oldest (id 0) left
    t.trial_end(5, False)
    with pytest.raises(Exception, match="does not support"):
        t.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
