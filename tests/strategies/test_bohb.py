"""BOHB: budgets, the KDE model (threshold, densities, sampling), config_space, import_data."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import nniray
from nniray.runtime.msg_dispatcher_base import CommandType, MetricType
from nniray.search_space import SearchSpaceError, parse
from nniray.strategies._bohb_kde import KDEConfigGenerator, MultivariateKDE, UnitEncoder
from nniray.strategies.bohb import BOHB
from nniray.strategies.hyperband import TRIAL_BUDGET

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "opt": {"_type": "choice", "_value": ["a", "b", "c"]}}


def start(adv, space=SPACE):
    adv.handle_initialize(space)
    assert adv.drain() == [(CommandType.Initialized, "")]
    return adv


def request(adv, n):
    adv.handle_request_trial_jobs(n)
    out = adv.drain()
    assert all(cmd == CommandType.NewTrialJob for cmd, _ in out)  # BOHB never says "no more"
    return [nniray.load(d) for _, d in out]


def finish(adv, job, value=None, event="SUCCEEDED"):
    if value is not None:
        adv.handle_report_metric_data({"parameter_id": job["parameter_id"], "trial_job_id": "t", "type": MetricType.FINAL,
                                       "sequence": 0, "value": nniray.dump(value)})
    adv.handle_trial_end({"trial_job_id": "t", "event": event, "hyper_params": nniray.dump(job)})


def test_brackets_cycle_with_hyperband_budgets():
    # max_budget=9, min_budget=1, eta=3: s_max=2, brackets s=2,1,0,2,... (NNI's workflow example)
    adv = start(BOHB(min_budget=1, max_budget=9, eta=3, seed=0))
    seen = []
    for _ in range(200):
        jobs = request(adv, 4)
        for job in jobs:
            s, i, _ = map(int, job["parameter_id"].split("_"))
            seen.append((s, i, job["parameters"][TRIAL_BUDGET]))
            finish(adv, job, job["parameters"]["x"])
    brackets = []
    for s, i, _ in seen:
        if i == 0 and (not brackets or brackets[-1] != s):
            brackets.append(s)
    assert brackets[:7] == [2, 1, 0, 2, 1, 0, 2]
    budgets = {(s, i): b for s, i, b in seen}
    assert budgets == {(2, 0): 1, (2, 1): 3, (2, 2): 9, (1, 0): 3, (1, 1): 9, (0, 0): 9}
    first = [t for t in seen[:13]]
    assert [t[:2] for t in first] == [(2, 0)] * 9 + [(2, 1)] * 3 + [(2, 2)]


def test_default_budgets():
    adv = BOHB()
    assert (adv.min_budget, adv.max_budget, adv.eta, adv.s_max) == (1, 3, 3, 1)
    assert adv.top_n_percent == 15 and adv.num_samples == 64 and adv.random_fraction == 0.33
    assert adv.bandwidth_factor == 3.0 and adv.min_bandwidth == 0.001 and adv.min_points_in_model is None
    jobs = request(start(adv), 10)
    assert [j["parameters"][TRIAL_BUDGET] for j in jobs] == [1, 1, 1]  # s=1: 3 configs at budget 1


@pytest.mark.parametrize("min_points, threshold", [(None, 3), (5, 5), (1, 3)])
def test_model_built_at_max_dim_plus_one_and_min_points(min_points, threshold):
    # dim = 2 -> dim + 1 = 3; a smaller min_points_in_model is raised to 3
    adv = start(BOHB(max_budget=9, min_points_in_model=min_points, seed=0))
    cg = adv.cg
    assert cg.min_points == threshold
    rng = np.random.default_rng(0)
    for n in range(1, threshold + 2):
        cg.new_result(np.array([rng.random(), float(rng.integers(3))]), loss=float(n), budget=1)
        assert (1 in cg.models) == (n >= threshold)


def test_results_and_failures_feed_the_model_of_their_budget():
    adv = start(BOHB(max_budget=9, seed=0))
    jobs = request(adv, 9)
    for n, job in enumerate(jobs[:8]):
        finish(adv, job, value=float(n))
    finish(adv, jobs[8], event="FAILED")  # no final result -> loss +inf
    obs = adv.cg.observations[1]
    assert len(obs) == 9
    losses = [loss for _, loss in obs]
    assert losses[:8] == [-float(n) for n in range(8)] and losses[8] == math.inf  # maximize: loss = -value
    assert 1 in adv.cg.models
    x = [v[0] for v, _ in obs]
    assert x == pytest.approx([j["parameters"]["x"] for j in jobs])


def test_kde_continuous_pdf_is_mean_of_gaussians_with_normal_reference_bandwidth():
    data = np.array([[0.2], [0.3], [0.7]])
    kde = MultivariateKDE(data, np.array([0]), min_bandwidth=1e-3)
    bw = 1.06 * data.std() * 3 ** (-1 / 5)
    assert kde.bw[0] == pytest.approx(bw)
    xs = np.array([[0.0], [0.25], [0.9]])
    expect = np.mean([stats.norm.pdf(xs[:, 0], d, bw) for d in data[:, 0]], axis=0)
    assert kde.pdf(xs) == pytest.approx(expect)


def test_kde_categorical_aitchison_aitken_and_min_bandwidth():
    data = np.array([[0.0, 0.5], [0.0, 0.5], [0.0, 0.5]])  # identical points: std 0
    kde = MultivariateKDE(data, np.array([3, 0]), min_bandwidth=0.01)
    assert kde.bw.tolist() == [0.01, 0.01]
    lam = 0.01
    gauss = stats.norm.pdf(0.5, 0.5, 0.01)
    assert kde.pdf(np.array([[0, 0.5], [2, 0.5]])) == pytest.approx([(1 - lam) * gauss, lam / 2 * gauss])
    wide = MultivariateKDE(np.array([[0.0], [2.0], [0.0], [2.0]]), np.array([3]), min_bandwidth=1e-3)
    assert wide.bw[0] == pytest.approx(2 / 3)  # lambda capped at (k-1)/k: all options equally likely
    assert wide.pdf(np.array([[0.0], [1.0], [2.0]])) == pytest.approx([1 / 3] * 3)


def test_widened_samples_stay_in_the_unit_cube():
    rng = np.random.default_rng(0)
    kde = MultivariateKDE(np.array([[0.01, 1.0], [0.99, 2.0], [0.5, 0.0]]), np.array([0, 3]), 1e-3)
    s = kde.sample_widened(500, 3.0, rng)
    assert s.shape == (500, 2)
    assert np.all((s[:, 0] >= 0) & (s[:, 0] <= 1))
    assert set(np.unique(s[:, 1])) <= {0.0, 1.0, 2.0}


def test_model_based_proposals_concentrate_on_the_good_region():
    space = parse({"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}})
    enc = UnitEncoder(space)
    rng = np.random.default_rng(0)
    cg = KDEConfigGenerator(enc, None, 15, 64, 0.0, 3.0, 1e-3, rng)
    for _ in range(60):
        v = rng.random(2)
        cg.new_result(v, loss=float(np.sum((v - 0.8) ** 2)), budget=1)
    proposals = np.array([cg.propose() for _ in range(40)])
    dist = np.sqrt(np.sum((proposals - 0.8) ** 2, axis=1))
    random_dist = np.sqrt(np.sum((rng.random((2000, 2)) - 0.8) ** 2, axis=1))
    assert np.median(dist) < 0.5 * np.median(random_dist)


def test_random_fraction_one_never_uses_the_model():
    space = parse({"x": {"_type": "uniform", "_value": [0, 1]}})
    cg = KDEConfigGenerator(UnitEncoder(space), None, 15, 64, 1.0, 3.0, 1e-3, np.random.default_rng(0))
    for n in range(10):
        cg.new_result(np.array([n / 10]), float(n), 1)
    assert cg.models and all(cg.propose() is None for _ in range(20))


def test_model_of_largest_budget_is_used_and_smaller_budgets_stop_refitting():
    space = parse({"x": {"_type": "uniform", "_value": [0, 1]}})
    cg = KDEConfigGenerator(UnitEncoder(space), None, 15, 64, 0.0, 3.0, 1e-3, np.random.default_rng(0))
    for n in range(3):
        cg.new_result(np.array([0.1 * n]), float(n), 9)
    assert cg.largest_budget_with_model() == 9
    for n in range(5):
        cg.new_result(np.array([0.5]), float(n), 1)
    assert 1 not in cg.models


def test_encoder_round_trip_all_types():
    space = parse({
        "c": {"_type": "choice", "_value": [1, "two", 3.0]}, "r": {"_type": "randint", "_value": [2, 9]},
        "u": {"_type": "uniform", "_value": [-1, 1]}, "q": {"_type": "quniform", "_value": [0, 10, 2.5]},
        "l": {"_type": "loguniform", "_value": [1e-4, 1]}, "ql": {"_type": "qloguniform", "_value": [1, 100, 1]},
        "n": {"_type": "normal", "_value": [0, 2]}, "qn": {"_type": "qnormal", "_value": [0, 2, 0.5]},
        "ln": {"_type": "lognormal", "_value": [0, 1]}, "qln": {"_type": "qlognormal", "_value": [1, 1, 1]}})
    enc = UnitEncoder(space)
    rng = np.random.default_rng(0)
    for _ in range(50):
        params = space.sample(rng)
        v = enc.encode_params(params)
        assert np.all((v >= 0) & (v <= 2))
        back = space.format(enc.decode(v))
        for k in params:
            assert back[k] == pytest.approx(params[k], rel=1e-6, abs=1e-9), k


def test_nested_choice_is_refused():
    with pytest.raises(SearchSpaceError, match="nested"):
        start(BOHB(), {"m": {"_type": "choice", "_value": [{"_name": "a", "x": {"_type": "uniform", "_value": [0, 1]}}]}})


PCS = """lr real [0.0001, 0.1] [0.01]log
opt categorical {adam, sgd} [adam]
momentum real [0.0, 0.99] [0.9]
units integer [8, 256] [32]log
layers integer [1, 4] [2]
momentum | opt == sgd
"""


def test_config_space_file_replaces_search_space_and_honours_conditions(tmp_path):
    f = tmp_path / "space.pcs"
    f.write_text(PCS)
    adv = start(BOHB(max_budget=9, config_space=str(f), seed=0), {"ignored": {"_type": "uniform", "_value": [0, 1]}})
    jobs = request(adv, 9)
    for job in jobs:
        p = job["parameters"]
        assert "ignored" not in p
        assert ("momentum" in p) == (p["opt"] == "sgd")
        assert isinstance(p["units"], int) and 8 <= p["units"] <= 256
        assert isinstance(p["layers"], int) and 1 <= p["layers"] <= 4
        assert 0.0001 <= p["lr"] <= 0.1
    assert {j["parameters"]["opt"] for j in jobs} == {"adam", "sgd"}
    for n, job in enumerate(jobs):
        finish(adv, job, float(n))
    assert len(adv.cg.observations[1]) == 9 and 1 in adv.cg.models  # conditional configs feed the model


def test_config_space_errors(tmp_path):
    with pytest.raises(ValueError, match="config_space.*not found"):
        BOHB(config_space=str(tmp_path / "missing.pcs"))
    bad = tmp_path / "bad.pcs"
    bad.write_text("lr real [0.1, 0.0001] [0.01]\n")
    with pytest.raises(ValueError, match="config_space"):
        BOHB(config_space=str(bad))


def test_import_data_uses_trial_budget_or_max_budget():
    adv = start(BOHB(max_budget=9, seed=0))
    adv.handle_import_data([
        {"parameter": {"x": 0.1, "opt": "a", TRIAL_BUDGET: 3}, "value": "0.5"},
        {"parameter": {"x": 0.2, "opt": "b"}, "value": {"default": 0.7}},
        {"parameter": {"x": 0.3, "opt": "c"}, "value": None},           # no result: skipped
        {"parameter": {"x": 0.4, "opt": "zzz"}, "value": 0.1},          # not in the space: skipped
    ])
    assert sorted(adv.cg.observations) == [3, 9]
    assert adv.cg.observations[3][0][1] == -0.5 and adv.cg.observations[9][0][1] == -0.7
    assert adv.cg.observations[9][0][0].tolist() == pytest.approx([0.2, 1.0])
    with pytest.raises(ValueError, match="record 0"):
        adv.handle_import_data([{"parameters": {}}])


def test_minimize_loss_sign():
    adv = start(BOHB(max_budget=9, optimize_mode="minimize", seed=0))
    job = request(adv, 1)[0]
    finish(adv, job, 0.25)
    assert adv.cg.observations[1][0][1] == 0.25


@pytest.mark.parametrize("kwargs, field", [
    ({"min_budget": 0}, "min_budget"), ({"max_budget": 1}, "max_budget must be larger"), ({"eta": 1}, "eta"),
    ({"top_n_percent": 100}, "top_n_percent"), ({"random_fraction": 1.5}, "random_fraction"),
    ({"bandwidth_factor": 0}, "bandwidth_factor"), ({"min_bandwidth": -1}, "min_bandwidth"),
    ({"num_samples": 0}, "num_samples"), ({"min_points_in_model": 0}, "min_points_in_model"),
    ({"max_budget": 2.5}, "max_budget")])
def test_bad_class_args(kwargs, field):
    with pytest.raises(ValueError, match=field):
        BOHB(**kwargs)


def test_registry_builds_it():
    from nniray.strategies.registry import create_algorithm
    adv = create_algorithm("advisor", "BOHB", {"min_budget": 1, "max_budget": 27, "eta": 3, "min_points_in_model": 7,
                                               "top_n_percent": 15, "num_samples": 64, "random_fraction": 0.33,
                                               "bandwidth_factor": 3.0, "min_bandwidth": 0.001})
    assert isinstance(adv, BOHB) and adv.s_max == 3
