"""RandomTuner, GridSearchTuner and BatchTuner: formulas, order, exhaustion, validation."""
import math

import numpy as np
import pytest

from nniray.search_space import SearchSpaceError
from nniray.strategies.batch_tuner import BatchTuner
from nniray.strategies.gridsearch import GridSearchTuner
from nniray.strategies.random_tuner import RandomTuner
from nniray.tuner import NoMoreTrialError
from tuner_helpers import ALL_TYPES_SPACE, check_in_range

def test_random_samples_every_type_in_range_and_covers_randint():
    t = RandomTuner(seed=3)
    t.update_search_space(ALL_TYPES_SPACE)
    ps = [t.generate_parameters(i) for i in range(400)]
    for p in ps:
        check_in_range(p)
    assert {p["ri"] for p in ps} == {2, 3, 4}  # upper bound exclusive, every value reachable
    assert {p["qu"] for p in ps} == {2.0, 5.0, 10.0}
    assert {p["nest"]["_name"] if isinstance(p["nest"], dict) else p["nest"] for p in ps} == {"conv", "pool", "none"}
    # loguniform is uniform in log space: about half the mass below the geometric mean
    below = np.mean([p["lu"] < math.sqrt(1e-4 * 1e-1) for p in ps])
    assert 0.4 < below < 0.6


def test_random_seed_reproducible_and_id_keyed():
    a, b, c = RandomTuner(seed=7), RandomTuner(seed=7), RandomTuner(seed=8)
    for t in (a, b, c):
        t.update_search_space(ALL_TYPES_SPACE)
    pa = [a.generate_parameters(i) for i in range(5)]
    assert pa == [b.generate_parameters(i) for i in range(5)]
    assert pa != [c.generate_parameters(i) for i in range(5)]
    # a resumed tuner asked for id 3 gives what the original gave for id 3
    assert b.generate_parameters(3) == pa[3]


def test_random_bad_args_and_space():
    with pytest.raises(ValueError, match="optimize_mode"):
        RandomTuner(optimize_mode="up")
    with pytest.raises(ValueError, match="seed"):
        RandomTuner(seed=-1)
    t = RandomTuner()
    with pytest.raises(SearchSpaceError, match="'x'"):
        t.update_search_space({"x": {"_type": "uniform", "_value": [1, 0]}})


def test_grid_order_nested_and_exhaustion():
    t = GridSearchTuner()
    t.update_search_space({
        "a": {"_type": "choice", "_value": ["x", {"_name": "y", "k": {"_type": "randint", "_value": [0, 2]}}]},
        "q": {"_type": "quniform", "_value": [0, 10, 2.5]},
    })
    assert t.size == 3 * 5
    ps = t.generate_multiple_parameters(list(range(100)))
    assert len(ps) == 15
    assert ps[:6] == [{"a": "x", "q": 0.0}, {"a": "x", "q": 2.5}, {"a": "x", "q": 5.0}, {"a": "x", "q": 7.5},
                      {"a": "x", "q": 10.0}, {"a": {"_name": "y", "k": 0}, "q": 0.0}]
    assert ps[-1] == {"a": {"_name": "y", "k": 1}, "q": 10.0}
    with pytest.raises(NoMoreTrialError):
        t.generate_parameters(101)


def test_grid_quniform_and_randint_values():
    t = GridSearchTuner()
    t.update_search_space({"q": {"_type": "quniform", "_value": [2, 10, 5]}, "r": {"_type": "randint", "_value": [-1, 2]}})
    ps = t.generate_multiple_parameters(list(range(20)))
    assert [p["q"] for p in ps[::3]] == [2.0, 5.0, 10.0]
    assert [p["r"] for p in ps[:3]] == [-1, 0, 1]
    t.update_search_space({"q": {"_type": "quniform", "_value": [0, 0.5, 0.1]}})
    assert [p["q"] for p in t.generate_multiple_parameters(list(range(20)))] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


@pytest.mark.parametrize("typ,val", [("uniform", [0, 1]), ("loguniform", [1, 2]), ("normal", [0, 1]),
                                     ("qloguniform", [1, 10, 1]), ("qnormal", [0, 1, 1]), ("lognormal", [0, 1]),
                                     ("qlognormal", [0, 1, 1])])
def test_grid_grids_continuous_types_as_nni_3(typ, val):
    # NNI 3.0 grids every type (epochs of CDF points); it used to refuse these (issue 10).
    t = GridSearchTuner()
    t.update_search_space({"ok": {"_type": "choice", "_value": [1]}, "lr": {"_type": typ, "_value": val}})
    first = t.generate_parameters(0)
    assert first["ok"] == 1 and isinstance(first["lr"], float)


def test_grid_import_data_skips_done_points_and_update_restarts():
    space = {"a": {"_type": "choice", "_value": [1, 2, 3]}}
    t = GridSearchTuner()
    t.update_search_space(space)
    t.import_data([{"parameter": {"a": 2}, "value": 0.5}])
    assert t.generate_multiple_parameters([0, 1, 2]) == [{"a": 1}, {"a": 3}]
    t.update_search_space({"a": {"_type": "choice", "_value": [1, 2, 3, 4]}, })
    assert t.generate_multiple_parameters([3, 4]) == [{"a": 4}]  # restart, done points skipped


def test_batch_tuner_sends_each_dict_in_order_then_stops():
    combos = [{"lr": 0.1, "opt": "sgd"}, {"lr": 0.01, "opt": "adam", "extra": [1, 2]}, {"lr": 1}]
    t = BatchTuner()
    t.update_search_space({"combine_params": {"_type": "choice", "_value": combos}})
    assert [t.generate_parameters(i) for i in range(3)] == combos
    with pytest.raises(NoMoreTrialError):
        t.generate_parameters(3)
    assert t.generate_multiple_parameters([4, 5]) == []


def test_batch_tuner_import_data_removes_done():
    combos = [{"x": 1}, {"x": 2}, {"x": 3}]
    t = BatchTuner()
    t.update_search_space({"combine_params": {"_type": "choice", "_value": combos}})
    t.import_data([{"parameter": {"x": 2}, "value": 1.0}])
    assert t.generate_multiple_parameters([0, 1, 2]) == [{"x": 1}, {"x": 3}]


@pytest.mark.parametrize("space,msg", [
    ({"combine_params": {"_type": "choice", "_value": [{"a": 1}]}, "y": {}}, "exactly one top-level key"),
    ({"combine_params": {"_type": "uniform", "_value": [0, 1]}}, "'combine_params' must be"),
    ({"combine_params": {"_type": "choice", "_value": [1, 2]}}, r"_value\[0\]' must be a dict"),
    ({"combine_params": {"_type": "choice", "_value": []}}, "non-empty list"),
])
def test_batch_tuner_refuses_other_spaces(space, msg):
    # (a single choice key with another name is accepted, as NNI does: tests/strategies/test_edge_cases.py)
    with pytest.raises(SearchSpaceError, match=msg):
        BatchTuner().update_search_space(space)


def test_grid_point_decoding_matches_product_order_and_tuners_pickle():
    import pickle

    from nniray.search_space import parse
    from nniray.strategies.gridsearch import _param_options, grid_iter, grid_point
    space = parse({"a": {"_type": "choice", "_value": ["x", {"_name": "y", "k": {"_type": "randint", "_value": [0, 3]}}]},
                   "b": {"_type": "randint", "_value": [0, 2]}, "c": {"_type": "quniform", "_value": [0, 1, 0.5]}})
    per = [_param_options(p) for p in space.params]
    assert [grid_point(per, i) for i in range(4 * 2 * 3)] == list(grid_iter(space))
    t = GridSearchTuner()
    t.update_search_space(space.raw)
    first = t.generate_parameters(0)
    clone = pickle.loads(pickle.dumps(t))  # the position survives a checkpoint
    assert clone.generate_parameters(1) == t.generate_parameters(1) != first
