import pytest

import nniray.mutable as m
from nniray.search_space import parse


def test_choice_freeze_contains_and_missing_label():
    c = m.choice("width", [16, 32, 64])
    assert c.label == "width"
    assert c.freeze({"width": 32}) == 32
    assert c.contains({"width": 64}) and not c.contains({"width": 8})
    with pytest.raises(KeyError) as e:
        c.freeze({"depth": 2})
    assert "'width'" in str(e.value) and "'depth'" in str(e.value)
    with pytest.raises(m.SampleValidationError, match="not one of the candidates"):
        c.freeze({"width": 8})


def test_arithmetic_builds_expressions_frozen_by_sample():
    w = m.choice("w", [16, 32])
    expr = (w * 2 + 1) // 3
    assert isinstance(expr, m.MutableExpression)
    assert expr.freeze({"w": 32}) == (32 * 2 + 1) // 3
    assert list(expr.simplify()) == ["w"]
    assert m.MutableExpression.max(w, 20).freeze({"w": 16}) == 20
    assert m.MutableExpression.condition(w > 20, "big", "small").freeze({"w": 32}) == "big"
    with pytest.raises(TypeError, match="no value until"):
        bool(w)


def test_simplify_shares_equal_labels_and_refuses_conflicts():
    a1, a2 = m.choice("a", [1, 2]), m.choice("a", [1, 2])
    space = m.MutableList([a1, a2 + 1, m.uniform("lr", 0, 1)])
    assert list(space.simplify()) == ["a", "lr"]
    assert space.freeze({"a": 2, "lr": 0.5}) == [2, 3, 0.5]
    with pytest.raises(m.DuplicateLabelError, match="'a'"):
        m.MutableList([m.choice("a", [1, 2]), m.choice("a", [1, 3])]).simplify()


def test_empty_candidates_refused_by_label():
    with pytest.raises(ValueError, match="'x'.*empty"):
        m.choice("x", [])


def test_random_default_and_grid():
    space = m.MutableDict({"a": m.choice("a", [1, 2, 3]), "n": m.randint("n", 0, 2),
                           "pick": m.CategoricalMultiple([0, 1, 2], n_chosen=2, label="pick")})
    s1 = space.random(random_state=3)
    assert space.random(random_state=3) == s1 and space.contains(
        {"a": s1["a"], "n": s1["n"], "pick": s1["pick"]})
    assert space.default() == {"a": 1, "n": 0, "pick": [0, 1]}
    grid = list(space.grid())
    assert len(grid) == 3 * 2 * 3 and len({repr(g) for g in grid}) == len(grid)
    for n in (m.loguniform("l", 1e-3, 1.0), m.normal("x", 0, 1)):
        for seed in range(5):
            memo = {}
            n.random(memo, random_state=seed)
            assert n.contains(memo)
    assert 1e-3 <= m.loguniform("l", 1e-3, 1.0).random(random_state=0) <= 1.0
    with pytest.raises(m.SampleValidationError, match="outside"):
        m.randint("n", 0, 2).freeze({"n": 2})  # upper bound exclusive


def test_json_search_space_round_trip_all_types():
    js = {
        "c": {"_type": "choice", "_value": [1, "a", [2, 3]]},
        "r": {"_type": "randint", "_value": [1, 5]},
        "u": {"_type": "uniform", "_value": [0.0, 1.0]},
        "qu": {"_type": "quniform", "_value": [0.0, 10.0, 2.0]},
        "l": {"_type": "loguniform", "_value": [0.001, 0.1]},
        "ql": {"_type": "qloguniform", "_value": [1.0, 100.0, 1.0]},
        "n": {"_type": "normal", "_value": [0.0, 1.0]},
        "qn": {"_type": "qnormal", "_value": [0.0, 1.0, 0.5]},
        "ln": {"_type": "lognormal", "_value": [0.0, 1.0]},
        "qln": {"_type": "qlognormal", "_value": [0.0, 1.0, 0.5]},
    }
    space = m.from_search_space(js)
    assert m.to_search_space(space) == js
    parsed = parse(js)
    for seed in range(5):
        sample = space.random(random_state=seed)
        parsed.flatten(sample)  # the HPO parser accepts what the mutables produce


def test_nested_choice_from_json():
    js = {"layer": {"_type": "choice", "_value": [
        {"_name": "conv", "k": {"_type": "choice", "_value": [3, 5]}}, "identity"]}}
    space = m.from_search_space(js)
    assert set(space.simplify()) == {"layer", "layer/conv/k"}
    assert space.freeze({"layer": "conv", "layer/conv/k": 5}) == {"layer": {"_name": "conv", "k": 5}}
    assert space.freeze({"layer": "identity"}) == {"layer": "identity"}  # inactive branch needs no value
    assert m.to_search_space(space) == js
    assert {repr(space.random(random_state=s)) for s in range(20)} >= {
        repr({"layer": "identity"}), repr({"layer": {"_name": "conv", "k": 3}})}


def test_package_level_helpers():
    import nniray
    assert nniray.choice("z", [1, 2]).freeze({"z": 2}) == 2
    assert nniray.randint("k", 0, 3).grid_values() == [0, 1, 2]
