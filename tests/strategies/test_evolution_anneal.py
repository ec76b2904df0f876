"""EvolutionTuner and AnnealTuner: NNI's rules on hand-made populations, ranges, seeding,
import_data equivalence."""
import math

import numpy as np
import pytest
from tuner_helpers import ALL_TYPES_SPACE, BRANIN_SPACE, branin_fn, check_in_range, run_loop

from nniray.search_space import SearchSpaceError, parse
from nniray.strategies.anneal import AnnealTuner
from nniray.strategies.evolution import EvolutionTuner
from nniray.strategies.random_tuner import RandomTuner

SPACE3 = {k: {"_type": "uniform", "_value": [0, 1]} for k in ("a", "b", "c")}


def random_data(space, n, seed=0):
    rng = np.random.default_rng(seed)
    sp = parse(space)
    return [{"parameter": sp.sample(rng), "value": float(rng.normal())} for _ in range(n)]


def diff_keys(p, q):
    return [k for k in p if p[k] != q[k]]


# -- Evolution ------------------------------------------------------------------------------

def test_evolution_bad_args():
    with pytest.raises(ValueError, match="population_size"):
        EvolutionTuner(population_size=0)
    with pytest.raises(ValueError, match="optimize_mode"):
        EvolutionTuner(optimize_mode="max")


def test_evolution_initial_population_is_random():
    ev, rnd = EvolutionTuner(population_size=5, seed=3), RandomTuner(seed=3)
    for t in (ev, rnd):
        t.update_search_space(SPACE3)
    assert [ev.generate_parameters(i) for i in range(5)] == [rnd.generate_parameters(i) for i in range(5)]


def test_evolution_tournament_worse_dies_better_mutated_in_one_parameter():
    t = EvolutionTuner(population_size=6, seed=1, optimize_mode="maximize")
    t.update_search_space(SPACE3)
    first = [t.generate_parameters(i) for i in range(6)]
    for i, p in enumerate(first):
        t.receive_trial_result(i, p, float(i))  # reward = index: member i is better than j < i
        t.trial_end(i, True)
    for step in range(10):
        before = {id(m): m for m in t.population}
        members = [(m.flat, -m.loss) for m in t.population]
        child = t.generate_parameters(100 + step)
        after = {id(m) for m in t.population}
        died = [m for k, m in before.items() if k not in after]
        assert len(died) == 1 and len(t.population) == len(members) - 1
        # the child is a survivor with exactly one parameter re-drawn
        parents = [f for f, _ in members if len(diff_keys(child, f)) == 1]
        assert parents, child
        parent_reward = max(r for f, r in members if len(diff_keys(child, f)) == 1)
        assert -died[0].loss <= parent_reward  # the dead one was not the better of the pair
        t.receive_trial_result(100 + step, child, float(np.random.default_rng(step).random()))
        t.trial_end(100 + step, True)
        assert len(t.population) == len(members)


def test_evolution_failed_trial_replaced_by_random_individual():
    t = EvolutionTuner(population_size=4, seed=2)
    t.update_search_space(SPACE3)
    ps = [t.generate_parameters(i) for i in range(4)]
    for i, p in enumerate(ps):
        t.receive_trial_result(i, p, float(i))
        t.trial_end(i, True)
    child = t.generate_parameters(10)  # tournament: population shrinks to 3
    assert len(t.population) == 3
    t.trial_end(10, False)  # the child failed: it is replaced by a random individual
    replacement = t.generate_parameters(11)
    assert len(t.population) == 3  # no tournament for the replacement
    assert all(len(diff_keys(replacement, m.flat)) == 3 for m in t.population)
    r = RandomTuner(seed=2)
    r.update_search_space(SPACE3)
    assert replacement == r.generate_parameters(11)
    assert child != replacement


def test_evolution_more_requests_than_population_returns_random():
    t = EvolutionTuner(population_size=2, seed=0)
    t.update_search_space(SPACE3)
    ps = [t.generate_parameters(i) for i in range(5)]  # no result has arrived yet
    assert len(ps) == 5
    for p in ps:
        assert all(0 <= p[k] <= 1 for k in "abc")


def test_evolution_nested_space_mutation_stays_valid():
    t = EvolutionTuner(population_size=5, seed=4)
    run_loop(t, lambda p: float(p["ri"]), 80, space=ALL_TYPES_SPACE)
    for i in range(200, 260):
        p = t.generate_parameters(i)
        check_in_range(p)
        t.receive_trial_result(i, p, 1.0)


def test_evolution_import_equals_receive():
    data = random_data(SPACE3, 30, seed=5)
    a, b = EvolutionTuner(population_size=8, seed=9), EvolutionTuner(population_size=8, seed=9)
    for t in (a, b):
        t.update_search_space(SPACE3)
    a.import_data(data)
    for i, d in enumerate(data):
        b.receive_trial_result(500 + i, d["parameter"], d["value"])
    assert len(a.population) == 8  # capped: the worst died
    assert [m.flat for m in a.population] == [m.flat for m in b.population]
    assert [a.generate_parameters(i) for i in range(5)] == [b.generate_parameters(i) for i in range(5)]


# -- Anneal -----------------------------------------------------------------------------------

def test_anneal_bad_args():
    with pytest.raises(ValueError, match="avg_best_idx"):
        AnnealTuner(avg_best_idx=0.5)
    with pytest.raises(ValueError, match="shrink_coef"):
        AnnealTuner(shrink_coef=-1)


def test_anneal_samples_prior_before_results():
    a, r = AnnealTuner(seed=8), RandomTuner(seed=8)
    for t in (a, r):
        t.update_search_space(ALL_TYPES_SPACE)
    assert [a.generate_parameters(i) for i in range(5)] == [r.generate_parameters(i) for i in range(5)]


def test_anneal_window_shrinks_around_good_point():
    space = {"u": {"_type": "uniform", "_value": [0, 10]}, "ri": {"_type": "randint", "_value": [0, 100]},
             "c": {"_type": "choice", "_value": ["a", "b", "c", "d"]}}
    t = AnnealTuner(seed=0)
    t.update_search_space(space)
    # 90 observations of the same point: T = 90, shrink = 1 / (1 + 9) = 0.1
    t.import_data([{"parameter": {"u": 3.0, "ri": 50, "c": "b"}, "value": 1.0}] * 90)
    ps = [t.generate_parameters(i) for i in range(300)]
    assert all(2.5 <= p["u"] <= 3.5 for p in ps)  # width (10 - 0) * 0.1 around 3
    assert all(45 <= p["ri"] <= 55 for p in ps)  # width 100 * 0.1 over the integers
    frac_b = np.mean([p["c"] == "b" for p in ps])  # P(b) = 0.9 + 0.1 / 4
    assert 0.88 < frac_b < 0.97


def test_anneal_window_is_kept_inside_range():
    t = AnnealTuner(seed=0)
    t.update_search_space({"lu": {"_type": "loguniform", "_value": [1e-4, 1.0]}})
    t.import_data([{"parameter": {"lu": 1e-4}, "value": 1.0}] * 90)
    ps = [t.generate_parameters(i)["lu"] for i in range(200)]
    lo, hi = math.log(1e-4), math.log(1.0)
    assert all(lo <= math.log(x) <= lo + 0.1 * (hi - lo) + 1e-9 for x in ps)


def test_anneal_every_type_in_range_seeded_and_import_equivalent():
    data = random_data(ALL_TYPES_SPACE, 40, seed=2)
    a, b = AnnealTuner(seed=1), AnnealTuner(seed=1)
    for t in (a, b):
        t.update_search_space(ALL_TYPES_SPACE)
    a.import_data(data)
    for i, d in enumerate(data):
        b.receive_trial_result(i, d["parameter"], d["value"])
    pa = [a.generate_parameters(i) for i in range(100, 200)]
    assert pa == [b.generate_parameters(i) for i in range(100, 200)]
    for p in pa:
        check_in_range(p)


def test_anneal_and_evolution_refuse_bad_space():
    for cls in (AnnealTuner, EvolutionTuner):
        with pytest.raises(SearchSpaceError, match="'x'"):
            cls().update_search_space({"x": {"_type": "randint", "_value": [3, 3]}})


def test_anneal_beats_random_on_branin():
    ann = [min(y for _, y in run_loop(AnnealTuner(optimize_mode="minimize", seed=s), branin_fn, 60)) for s in range(5)]
    rnd = [min(y for _, y in run_loop(RandomTuner(optimize_mode="minimize", seed=s), branin_fn, 60)) for s in range(5)]
    assert np.median(ann) < np.median(rnd)


def test_anneal_constant_liar_pending_point_counts():
    """NNI's Anneal takes TPE's Constant Liar classArgs: a pending point is an observation with
    the liar value (here 'min' of reported values while minimizing: it becomes the best)."""
    data = random_data(BRANIN_SPACE, 20, seed=6)
    liar = AnnealTuner(seed=2, optimize_mode="minimize", parallel_optimize=True, constant_liar_type="min")
    liar.update_search_space(BRANIN_SPACE)
    liar.import_data(data)
    pending = liar.generate_parameters(300)
    nxt = liar.generate_parameters(301)
    ref = AnnealTuner(seed=2, optimize_mode="minimize")
    ref.update_search_space(BRANIN_SPACE)
    ref.import_data(data)
    ref._counts = dict(ref._counts)  # the liar does not count towards the shrink rule
    ref.observations.append(type(ref.observations[0])(ref.space.flatten(pending), min(d["value"] for d in data), 0.0))
    assert ref.generate_parameters(301) == nxt
    plain = AnnealTuner(seed=2, optimize_mode="minimize")
    plain.update_search_space(BRANIN_SPACE)
    plain.import_data(data)
    later = [liar.generate_parameters(i) for i in range(302, 312)]
    assert [plain.generate_parameters(i) for i in range(302, 312)] != later


def test_random_accepts_nni_liar_args():
    RandomTuner(parallel_optimize=True, constant_liar_type="max")
    with pytest.raises(ValueError, match="constant_liar_type"):
        RandomTuner(constant_liar_type="median")
