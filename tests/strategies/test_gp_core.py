"""The GP core and the unit-cube helpers, on cases small enough to check by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nniray.search_space import parse
from nniray.strategies._bo_space import UnitSpace
from nniray.strategies._gp_core import (GaussianProcess, OutputTransform, expected_improvement, log_expected_improvement,
                                        lower_confidence_bound, matern, probability_of_improvement)


def test_expected_improvement_by_hand():
    # mu = best: EI = sigma * phi(0) = 1/sqrt(2 pi).
    assert expected_improvement(0.0, 1.0, 0.0) == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-12)
    # mu=1, sigma=2, best=0: z = -0.5, EI = 2 * (-0.5 * Phi(-0.5) + phi(-0.5)).
    phi, Phi = math.exp(-0.125) / math.sqrt(2 * math.pi), 0.5 * math.erfc(0.5 / math.sqrt(2))
    assert expected_improvement(1.0, 2.0, 0.0) == pytest.approx(2 * (-0.5 * Phi + phi), rel=1e-12)
    # xi shifts the target: best - xi.
    assert expected_improvement(0.0, 1.0, 0.5, xi=0.5) == pytest.approx(1 / math.sqrt(2 * math.pi))
    # Far below the best, EI is the plain improvement.
    assert expected_improvement(-10.0, 1e-3, 0.0) == pytest.approx(10.0)


def test_log_ei_matches_and_stays_finite():
    mu = np.array([0.0, 1.0, 3.0, -2.0])
    sd = np.array([1.0, 2.0, 0.5, 0.3])
    np.testing.assert_allclose(log_expected_improvement(mu, sd, 0.0), np.log(expected_improvement(mu, sd, 0.0)),
                               rtol=1e-9)
    far = log_expected_improvement(np.array([40.0, 400.0, 4e4]), np.ones(3), 0.0)
    assert np.all(np.isfinite(far)) and far[0] > far[1] > far[2]
    # z = -40: log EI ≈ -z²/2 - log(2π)/2 - 2 log|z|.
    assert far[0] == pytest.approx(-800 - 0.5 * math.log(2 * math.pi) - 2 * math.log(40), abs=2e-3)


def test_poi_and_ucb():
    assert probability_of_improvement(0.0, 1.0, 0.0) == pytest.approx(0.5)
    assert lower_confidence_bound(1.0, 0.5, 5) == pytest.approx(1.5)


def test_matern_values():
    r = np.array([0.0, 1.0])
    np.testing.assert_allclose(matern(r, 2.5), [1.0, (1 + math.sqrt(5) + 5 / 3) * math.exp(-math.sqrt(5))])
    np.testing.assert_allclose(matern(r, 0.5), [1.0, math.exp(-1)])


def test_gp_interpolates_and_gradient_is_right():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(15, 2))
    y = np.sin(6 * X[:, 0]) + X[:, 1]
    gp = GaussianProcess(2, nu=2.5, alpha=1e-6)
    y = (y - y.mean()) / y.std()
    v = np.array([-1.0, 0.5, 0.2, -5.0])
    D2 = ((X[:, None, :] - X[None, :, :]) ** 2).reshape(-1, 2)
    f, g = gp._neg_log_posterior(v, X, y, D2)
    num = [(gp._neg_log_posterior(v + e, X, y, D2)[0] - gp._neg_log_posterior(v - e, X, y, D2)[0]) / 2e-6
           for e in np.eye(4) * 1e-6]
    np.testing.assert_allclose(g, num, rtol=1e-4, atol=1e-4)
    gp.fit(X, y, rng)
    mu, sd = gp.condition(X, y).predict(X)
    np.testing.assert_allclose(mu, y, atol=0.05)
    assert np.all(sd < 0.1)
    _, sd_far = gp.condition(X, y).predict(np.array([[5.0, 5.0]]))
    assert sd_far[0] > 0.5


def test_output_transform_is_monotone():
    y = np.array([1.0, 2.0, 3.0, 1000.0, 5.0, 1.5])
    t = OutputTransform(y)(y)
    assert list(np.argsort(t)) == list(np.argsort(y))
    assert t.mean() == pytest.approx(0.0, abs=1e-9) and t.std() == pytest.approx(1.0)


def test_unit_space_snaps_like_from_unit():
    space = parse({"c": {"_type": "choice", "_value": [1, 2, 4]}, "r": {"_type": "randint", "_value": [0, 5]},
                   "q": {"_type": "quniform", "_value": [0, 10, 2.5]},
                   "ql": {"_type": "qloguniform", "_value": [1, 100, 5]}})
    us = UnitSpace(space)
    U = np.random.default_rng(0).uniform(size=(200, 4))
    S = us.snap(U)
    for u, s in zip(U, S):
        assert us.decode(u) == us.decode(s)
        np.testing.assert_allclose(us.encode(us.decode(s)), s, atol=1e-12)
    assert us.decode(np.array([1.0, 1.0, 1.0, 1.0])) == {"c": 4, "r": 4, "q": 10.0, "ql": 100.0}
    n = us.neighbours(us.encode({"c": 2, "r": 0, "q": 2.5, "ql": 5.0}))
    decoded = [us.decode(x) for x in n]
    assert {"c": 1, "r": 0, "q": 2.5, "ql": 5.0} in decoded and {"c": 2, "r": 1, "q": 2.5, "ql": 5.0} in decoded
    assert {"c": 2, "r": 0, "q": 5.0, "ql": 5.0} in decoded and {"c": 2, "r": 0, "q": 2.5, "ql": 10.0} in decoded
    assert all(d["r"] >= 0 for d in decoded)
