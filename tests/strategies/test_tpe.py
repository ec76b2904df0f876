"""TpeTuner: validation, ranges of every type (nested too), seeding, import_data equivalence,
Constant Liar, and that it actually optimizes."""
import math

import numpy as np
import pytest
from tuner_helpers import ALL_TYPES_SPACE, BRANIN_SPACE, branin_fn, check_in_range, run_loop

from nniray.search_space import SearchSpaceError
from nniray.strategies.random_tuner import RandomTuner
from nniray.strategies.tpe import TpeTuner


def feed_random(tuner, n, space, seed=0):
    rng = np.random.default_rng(seed)
    from nniray.search_space import parse
    sp = parse(space)
    data = [{"parameter": sp.sample(rng), "value": float(rng.normal())} for _ in range(n)]
    return data


def test_bad_class_args_name_the_argument():
    with pytest.raises(ValueError, match="constant_liar_type"):
        TpeTuner(constant_liar_type="median")
    with pytest.raises(ValueError, match="optimize_mode"):
        TpeTuner(optimize_mode="best")
    with pytest.raises(ValueError, match="parallel_optimize"):
        TpeTuner(parallel_optimize="yes")
    with pytest.raises(ValueError, match="tpe_args: unknown key"):
        TpeTuner(tpe_args={"n_startup": 3})
    with pytest.raises(ValueError, match="tpe_args.gamma"):
        TpeTuner(tpe_args={"gamma": 0})
    with pytest.raises(ValueError, match="tpe_args.n_ei_candidates"):
        TpeTuner(tpe_args={"n_ei_candidates": 0})


def test_refuses_bad_space_naming_key():
    with pytest.raises(SearchSpaceError, match="'lr'"):
        TpeTuner().update_search_space({"lr": {"_type": "loguniform", "_value": [0, 1]}})


def test_model_phase_stays_in_range_for_every_type_and_nested():
    t = TpeTuner(seed=1, tpe_args={"n_startup_jobs": 5})
    t.update_search_space(ALL_TYPES_SPACE)
    t.import_data(feed_random(t, 30, ALL_TYPES_SPACE))
    ps = [t.generate_parameters(i) for i in range(150)]
    for p in ps:
        check_in_range(p)
    # the model still explores every branch and the ordered randint ends
    assert {p["ri"] for p in ps} <= {2, 3, 4}
    names = {p["nest"]["_name"] if isinstance(p["nest"], dict) else p["nest"] for p in ps}
    assert len(names) >= 2


def test_seed_reproducible_and_id_keyed():
    a = run_loop(TpeTuner(optimize_mode="minimize", seed=5), branin_fn, 25)
    b = run_loop(TpeTuner(optimize_mode="minimize", seed=5), branin_fn, 25)
    c = run_loop(TpeTuner(optimize_mode="minimize", seed=6), branin_fn, 25)
    assert a == b
    assert a != c


def test_import_data_equals_receive_trial_result():
    data = feed_random(None, 40, BRANIN_SPACE, seed=3)
    data.append({"parameter": {"x1": 100.0, "x2": 1.0}, "value": 1.0})  # out of range: skipped
    data.append({"parameter": {"x1": 1.0}, "value": 1.0})  # missing key: skipped
    data.append({"parameter": {"x1": 1.0, "x2": 1.0}, "value": "bad"})  # not a metric: skipped
    a, b = TpeTuner(seed=11), TpeTuner(seed=11)
    for t in (a, b):
        t.update_search_space(BRANIN_SPACE)
    a.import_data(data)
    for i, d in enumerate(data[:40]):
        b.receive_trial_result(1000 + i, d["parameter"], {"default": d["value"], "other": 1})
    assert len(a.observations) == len(b.observations) == 40
    assert [a.generate_parameters(i) for i in range(50, 55)] == [b.generate_parameters(i) for i in range(50, 55)]


def test_optimize_mode_direction():
    """Maximizing f is minimizing -f: same suggestions."""
    data = feed_random(None, 30, BRANIN_SPACE, seed=4)
    neg = [{"parameter": d["parameter"], "value": -d["value"]} for d in data]
    a, b = TpeTuner(optimize_mode="maximize", seed=2), TpeTuner(optimize_mode="minimize", seed=2)
    for t, dd in ((a, data), (b, neg)):
        t.update_search_space(BRANIN_SPACE)
        t.import_data(dd)
    assert a.generate_parameters(99) == b.generate_parameters(99)


@pytest.mark.parametrize("mode,kind,expected", [
    ("maximize", "min", 2.0), ("maximize", "max", 5.0), ("maximize", "mean", 3.5),
    ("minimize", "min", 2.0), ("minimize", "max", 5.0), ("minimize", "mean", 3.5),
])
def test_constant_liar_value(mode, kind, expected):
    t = TpeTuner(optimize_mode=mode, parallel_optimize=True, constant_liar_type=kind)
    t.update_search_space(BRANIN_SPACE)
    assert t.liar_loss() is None
    for i, v in enumerate([2.0, 5.0, 3.0, 4.0]):
        t.receive_trial_result(i, {"x1": float(i), "x2": 1.0}, v)
    # liar = min/max/mean of the reported values; as a loss it is negated when maximizing
    assert t.liar_loss() == pytest.approx(-expected if mode == "maximize" else expected)


def test_constant_liar_pending_points_change_next_suggestion():
    data = feed_random(None, 30, BRANIN_SPACE, seed=8)

    def make(parallel):
        t = TpeTuner(seed=3, parallel_optimize=parallel)
        t.update_search_space(BRANIN_SPACE)
        t.import_data(data)
        return t

    plain, liar = make(False), make(True)
    first_p, first_l = plain.generate_parameters(100), liar.generate_parameters(100)
    assert first_p == first_l  # nothing pending yet
    # with a pending point, the liar tuner's next suggestion differs; without CL it does not
    assert plain.generate_parameters(101) == make(False).generate_parameters(101)
    assert liar.generate_parameters(101) != make(True).generate_parameters(101)
    # once the pending trial fails, it no longer counts
    liar.trial_end(100, False)
    liar.trial_end(101, False)
    assert liar.generate_parameters(102) == make(True).generate_parameters(102)


def test_constant_liar_pending_point_counts_with_the_liar_value():
    """A pending point is an observation with the liar loss: the liar tuner equals a tuner that
    really observed the pending point with that value."""
    data = feed_random(None, 30, BRANIN_SPACE, seed=9)
    liar = TpeTuner(seed=4, parallel_optimize=True, constant_liar_type="max", optimize_mode="minimize")
    liar.update_search_space(BRANIN_SPACE)
    liar.import_data(data)
    pending = liar.generate_parameters(200)
    nxt = liar.generate_parameters(201)
    ref = TpeTuner(seed=4, optimize_mode="minimize")
    ref.update_search_space(BRANIN_SPACE)
    ref.import_data(data + [{"parameter": pending, "value": max(d["value"] for d in data)}])
    assert ref.generate_parameters(201) == nxt


def test_search_space_update_keeps_fitting_history():
    t = TpeTuner(seed=0)
    t.update_search_space(BRANIN_SPACE)
    t.import_data(feed_random(None, 20, BRANIN_SPACE, seed=1))
    t.update_search_space({"x1": {"_type": "uniform", "_value": [-5, 10]}, "x2": {"_type": "uniform", "_value": [0, 7]}})
    assert 0 < len(t.observations) < 20
    assert all(ob.flat["x2"] <= 7 for ob in t.observations)
    t.update_search_space({"y": {"_type": "choice", "_value": [1, 2]}})
    assert t.observations == []
    assert t.generate_parameters(1)["y"] in (1, 2)


def test_tpe_beats_random_on_branin():
    """Median best-of-60 over 5 fixed seeds: TPE clearly below Random."""
    tpe = [min(y for _, y in run_loop(TpeTuner(optimize_mode="minimize", seed=s), branin_fn, 60)) for s in range(5)]
    rnd = [min(y for _, y in run_loop(RandomTuner(optimize_mode="minimize", seed=s), branin_fn, 60)) for s in range(5)]
    assert np.median(tpe) < np.median(rnd)
    assert np.median(tpe) < 0.9  # optimum 0.3979


NESTED = {"model": {"_type": "choice", "_value": [
    {"_name": "a", "x": {"_type": "uniform", "_value": [0, 1]}},
    {"_name": "b", "y": {"_type": "randint", "_value": [0, 10]}, "z": {"_type": "quniform", "_value": [0, 1, 0.25]}},
    "c",
]}}


def nested_value(p):
    m = p["model"]
    if m == "c":
        return 0.2
    if m["_name"] == "a":
        return m["x"]
    return m["y"] / 20 + m["z"] / 10


def test_tpe_optimizes_nested_space():
    t = TpeTuner(seed=0)  # maximize
    hist = run_loop(t, nested_value, 60, space=NESTED)
    late = [p for p, _ in hist[-20:]]
    assert sum(isinstance(p["model"], dict) and p["model"]["_name"] == "a" for p in late) >= 12
    assert max(y for _, y in hist) > 0.95


def test_tpe_normal_types_stay_within_five_sigma():
    """The model of a normal type is truncated at mu +- 5 sigma (in log space for lognormal):
    an uninformative objective must not make TPE drift into the tails."""
    space = {"n": {"_type": "qnormal", "_value": [1, 2, 0.5]}, "l": {"_type": "lognormal", "_value": [0, 3]}}
    t = TpeTuner(seed=0, tpe_args={"n_startup_jobs": 2})
    hist = run_loop(t, lambda p: 0.0 if p["n"] > 1 else 1.0, 150, space=space)
    for p, _ in hist[2:]:
        assert -9.25 <= p["n"] <= 11.25  # 1 +- 5*2, plus half a q step of rounding
        assert abs(math.log(p["l"])) <= 15 + 1e-9


@pytest.mark.parametrize("make", [lambda: TpeTuner(seed=21, optimize_mode="minimize"),
                                  lambda: __import__("nniray.strategies.anneal", fromlist=["x"]).AnnealTuner(seed=21, optimize_mode="minimize")])
def test_resume_continues_exactly(make):
    """A tuner rebuilt from the store by import_data suggests, for the next parameter ids,
    exactly what the original tuner would have suggested."""
    original = make()
    hist = run_loop(original, branin_fn, 30)
    resumed = make()
    resumed.update_search_space(BRANIN_SPACE)
    resumed.import_data([{"parameter": p, "value": y} for p, y in hist])
    assert [resumed.generate_parameters(i) for i in range(30, 35)] == [original.generate_parameters(i) for i in range(30, 35)]


def test_max_kernels_subsample_keeps_total_weight_and_newest():
    from nniray.strategies._tpe_core import default_weights
    t = TpeTuner(seed=0, tpe_args={"max_kernels": 100})
    idx = np.arange(5000)
    rows, w = t._kernels(idx, np.random.default_rng(0))
    assert len(rows) == len(w) == 100
    assert np.array_equal(rows[-25:], idx[-25:]) and np.all(w[-25:] == 1)  # the newest 25 kept as is
    assert w.sum() == pytest.approx(default_weights(5000, 25).sum())  # the mixture's weight is preserved
    assert np.all(np.diff(rows) >= 0)  # chronological order kept
    small, ws = t._kernels(np.arange(80), np.random.default_rng(0))
    assert len(small) == 80 and np.array_equal(ws, default_weights(80, 25))


def test_max_kernels_still_optimizes():
    hist = run_loop(TpeTuner(optimize_mode="minimize", seed=1, tpe_args={"max_kernels": 30}), branin_fn, 80)
    assert min(y for _, y in hist) < 0.9
