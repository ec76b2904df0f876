"""Shared test helpers of the tuner tests (imported via the path set in conftest.py)."""
import math



def branin(x1, x2):
    a, b, c, r, s, t = 1, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


BRANIN_SPACE = {"x1": {"_type": "uniform", "_value": [-5, 10]}, "x2": {"_type": "uniform", "_value": [0, 15]}}


def run_loop(tuner, func, n, space=None):
    """Sequential optimization loop; returns the list of (params, value)."""
    tuner.update_search_space(space or BRANIN_SPACE)
    out = []
    for i in range(n):
        p = tuner.generate_parameters(i)
        y = func(p)
        tuner.receive_trial_result(i, p, y)
        tuner.trial_end(i, True)
        out.append((p, y))
    return out


def branin_fn(p):
    return branin(p["x1"], p["x2"])


ALL_TYPES_SPACE = {
    "c": {"_type": "choice", "_value": ["a", "b", 3]},
    "ri": {"_type": "randint", "_value": [2, 5]},
    "u": {"_type": "uniform", "_value": [-1.0, 1.0]},
    "qu": {"_type": "quniform", "_value": [2, 10, 5]},
    "lu": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "qlu": {"_type": "qloguniform", "_value": [1, 100, 10]},
    "n": {"_type": "normal", "_value": [0, 2]},
    "qn": {"_type": "qnormal", "_value": [0, 2, 0.5]},
    "ln": {"_type": "lognormal", "_value": [0, 1]},
    "qln": {"_type": "qlognormal", "_value": [0, 1, 0.5]},
    "nest": {"_type": "choice", "_value": [
        {"_name": "conv", "k": {"_type": "randint", "_value": [1, 4]}},
        {"_name": "pool"},
        "none",
    ]},
}


def check_in_range(p):
    assert p["c"] in ("a", "b", 3)
    assert isinstance(p["ri"], int) and 2 <= p["ri"] < 5
    assert -1 <= p["u"] <= 1
    assert p["qu"] in (2.0, 5.0, 10.0)  # clip(round(x/5)*5, 2, 10)
    assert 1e-4 <= p["lu"] <= 1e-1
    assert 1 <= p["qlu"] <= 100 and (p["qlu"] in (1.0, 100.0) or math.isclose(p["qlu"] % 10, 0, abs_tol=1e-9))
    assert math.isclose(p["qn"] / 0.5, round(p["qn"] / 0.5), abs_tol=1e-9)
    assert p["ln"] > 0
    assert p["qln"] >= 0 and math.isclose(p["qln"] / 0.5, round(p["qln"] / 0.5), abs_tol=1e-9)
    nest = p["nest"]
    assert nest == "none" or nest == {"_name": "pool"} or (nest["_name"] == "conv" and nest["k"] in (1, 2, 3))


