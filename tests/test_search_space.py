"""The search-space module every tuner uses: NNI's formulas and errors that name the key."""
import math

import numpy as np
import pytest

from nniray.search_space import SearchSpaceError, check_supported, parse


@pytest.mark.parametrize("spec, words", [
    ({"_type": "uniform", "_value": [1, 0]}, "needs low < high"),
    ({"_type": "uniform", "_value": [0]}, "must be 2 finite numbers [low, high]"),
    ({"_type": "loguniform", "_value": [0, 1]}, "needs 0 < low < high"),
    ({"_type": "qloguniform", "_value": [-1, 1, 1]}, "needs 0 < low < high"),
    ({"_type": "quniform", "_value": [0, 1, 0]}, "needs q > 0"),
    ({"_type": "quniform", "_value": [0, 1]}, "[low, high, q]"),
    ({"_type": "randint", "_value": [3, 3]}, "lower < upper"),
    ({"_type": "randint", "_value": [0.5, 3]}, "must be integers"),
    ({"_type": "normal", "_value": [0, 0]}, "sigma > 0"),
    ({"_type": "qnormal", "_value": [0, 1, -1]}, "q > 0"),
    ({"_type": "lognormal", "_value": [0, -1]}, "sigma > 0"),
    ({"_type": "qlognormal", "_value": [0, 1]}, "[mu, sigma, q]"),
    ({"_type": "choice", "_value": []}, "at least one option"),
    ({"_type": "choice", "_value": "abc"}, "must be a list"),
    ({"_type": "uniformm", "_value": [0, 1]}, "did you mean 'uniform'"),
    ({"_type": "uniform", "_value": [0, float("nan")]}, "finite numbers"),
    ({"_value": [0, 1]}, '{"_type": TYPE, "_value": VALUE}'),
    ({"_type": "uniform", "_value": [0, 1], "extra": 1}, "unknown key"),
])
def test_each_malformed_entry_names_the_key_and_the_fix(spec, words):
    with pytest.raises(SearchSpaceError) as e:
        parse({"lr": spec})
    assert "'lr'" in str(e.value) and words in str(e.value)


def test_nested_choice_needs_name_and_distinct_names():
    with pytest.raises(SearchSpaceError, match=r"'layer'.*option 1 .*needs a \"_name\""):
        parse({"layer": {"_type": "choice", "_value": [{"_name": "a"}, {"k": {"_type": "randint", "_value": [0, 2]}}]}})
    with pytest.raises(SearchSpaceError, match="distinct"):
        parse({"layer": {"_type": "choice", "_value": [{"_name": "a"}, {"_name": "a"}]}})
    with pytest.raises(SearchSpaceError, match="'layer/a/k'"):
        parse({"layer": {"_type": "choice", "_value": [{"_name": "a", "k": {"_type": "randint", "_value": [2, 1]}}]}})
    with pytest.raises(SearchSpaceError, match="not set"):
        parse(None)


def test_sampling_follows_nni_formulas():
    rng = np.random.default_rng(0)
    space = parse({
        "r": {"_type": "randint", "_value": [2, 5]},
        "q": {"_type": "quniform", "_value": [0, 10, 2.5]},
        "q2": {"_type": "quniform", "_value": [2, 10, 5]},
        "lq": {"_type": "qloguniform", "_value": [1, 100, 10]},
        "lu": {"_type": "loguniform", "_value": [1e-3, 1]},
        "c": {"_type": "choice", "_value": ["a", 2, None]},
        "qn": {"_type": "qnormal", "_value": [0, 3, 2]},
    })
    seen = {k: set() for k in ("r", "q", "q2", "lq", "c")}
    for _ in range(3000):
        p = space.sample(rng)
        for k in seen:
            seen[k].add(p[k])
        assert 1e-3 <= p["lu"] <= 1
        assert p["qn"] % 2 == 0
    assert seen["r"] == {2, 3, 4}  # upper exclusive
    assert seen["q"] == {0.0, 2.5, 5.0, 7.5, 10.0}
    assert seen["q2"] == {2.0, 5.0, 10.0}  # clip(round(u/q)*q, low, high): 2 and 10 by clipping
    assert min(seen["lq"]) == 1.0 and max(seen["lq"]) == 100.0 and all(v in (1.0, 100.0) or v % 10 == 0 for v in seen["lq"])
    assert seen["c"] == {"a", 2, None}


def test_nested_format_flatten_round_trip_and_support_checks():
    raw = {"layer": {"_type": "choice", "_value": [
        {"_name": "conv", "k": {"_type": "choice", "_value": [3, 5]}, "lr": {"_type": "uniform", "_value": [0, 1]}},
        {"_name": "pool"}]}}
    space = parse(raw)
    assert space.is_nested
    rng = np.random.default_rng(1)
    names = set()
    for _ in range(50):
        p = space.sample(rng)
        names.add(p["layer"]["_name"])
        if p["layer"]["_name"] == "conv":
            assert set(p["layer"]) == {"_name", "k", "lr"}
        else:
            assert p["layer"] == {"_name": "pool"}
        assert space.format(space.flatten(p)) == p
    assert names == {"conv", "pool"}
    with pytest.raises(SearchSpaceError, match="GPTuner does not support nested choice"):
        check_supported(space, "GPTuner", None, nested=False)
    with pytest.raises(SearchSpaceError, match="SMAC does not support _type 'normal' \\(key 'n'\\)"):
        check_supported(parse({"n": {"_type": "normal", "_value": [0, 1]}}), "SMAC", ["choice", "uniform"])
    with pytest.raises(SearchSpaceError, match="numerical choice"):
        check_supported(parse({"c": {"_type": "choice", "_value": ["a"]}}), "GPTuner", None, numeric_choice_only=True)


def test_unit_encoding_round_trips():
    space = parse({"lu": {"_type": "loguniform", "_value": [1e-4, 1]}, "r": {"_type": "randint", "_value": [0, 10]}})
    lu, r = space.params
    assert lu.to_unit(1e-2) == pytest.approx(0.5)
    assert lu.from_unit(0.5) == pytest.approx(1e-2)
    assert r.from_unit(1.0) == 9 and r.from_unit(0.0) == 0
    assert math.isclose(lu.from_unit(lu.to_unit(0.3)), 0.3)
