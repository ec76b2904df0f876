"""Curvefitting assessor: curve formulas, fits, filter, MCMC prediction and the assess rules."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nniray.assessor import AssessResult
from nniray.strategies.curvefitting import CURVE_FUNCTIONS, CurveModel, CurvefittingAssessor
from nniray.strategies.curvefitting import curvefunctions as cf
from nniray.strategies.curvefitting.model_factory import LEAST_FITTED_FUNCTION, fit_curve
from nniray.strategies.registry import create_algorithm

E = math.e


def test_twelve_models_in_nni_order():
    assert [c.name for c in CURVE_FUNCTIONS] == [
        "vap", "pow3", "linear", "logx_linear", "dr_hill_zero_background", "log_power", "pow4", "mmf", "exp4",
        "ilog2", "weibull", "janoschek"]
    assert [c.num_params for c in CURVE_FUNCTIONS] == [3, 3, 2, 2, 3, 3, 4, 4, 4, 2, 4, 4]


@pytest.mark.parametrize("f, args, expected", [
    (cf.vap, (2.0, 0.0, 0.0, 1.0), 2.0),                     # exp(a + b/x + c log x) = x
    (cf.vap, (1.0, 1.0, 1.0, 5.0), math.exp(2.0)),
    (cf.pow3, (4.0, 1.0, 0.5, 0.5), 0.75),                   # c - a x^-alpha
    (cf.linear, (3.0, 2.0, 1.0), 7.0),
    (cf.logx_linear, (E, 2.0, 1.0), 3.0),                    # a log x + b
    (cf.dr_hill_zero_background, (2.0, 1.0, 1.0, 2.0), 0.5),  # theta x^eta / (kappa^eta + x^eta)
    (cf.dr_hill_zero_background, (3.0, 2.0, 2.0, 1.0), 1.8),
    (cf.log_power, (E, 1.0, 1.0, 1.0), 0.5),                 # a / (1 + (x/e^b)^c)
    (cf.pow4, (2.0, 1.0, 1.0, 2.0, 1.0), 0.75),              # c - (a x + b)^-alpha
    (cf.mmf, (1.0, 1.0, 0.0, 1.0, 1.0), 0.5),                # alpha - (alpha-beta)/(1 + (kappa x)^delta)
    (cf.mmf, (2.0, 1.0, 0.5, 1.0, 2.0), 0.9),
    (cf.exp4, (1.0, 1.0, 1.0, 1.0, 1.0), 0.0),               # c - exp(-a x^alpha + b)
    (cf.exp4, (4.0, 2.0, 1.0, 0.0, 0.5), 2.0 - math.exp(-2.0)),
    (cf.ilog2, (E, 1.0, 0.5), 0.5),                          # c - a / log x
    (cf.weibull, (1.0, 1.0, 0.0, 1.0, 1.0), 1 - math.exp(-1)),  # alpha - (alpha-beta) exp(-(kappa x)^delta)
    (cf.weibull, (2.0, 1.0, 0.5, 0.5, 2.0), 1 - 0.5 * math.exp(-1)),
    (cf.janoschek, (1.0, 1.0, 0.0, 1.0, 2.0), 1 - math.exp(-1)),  # a - (a-beta) exp(-k x^delta)
    (cf.janoschek, (2.0, 1.0, 0.5, 0.5, 2.0), 1 - 0.5 * math.exp(-2)),
])
def test_curve_formulas(f, args, expected):
    assert f(*args) == pytest.approx(expected)


def test_curves_are_vectorized_over_chains():
    x = np.arange(1, 4, dtype=float)[None, :]
    theta = np.array([[0.9, 0.5, 0.8], [0.8, 0.4, 0.5]])
    out = cf.pow3(x, theta[:, :1], theta[:, 1:2], theta[:, 2:3])
    assert out.shape == (2, 3)
    assert out[1, 2] == pytest.approx(0.8 - 0.4 * 3 ** -0.5)


@pytest.mark.parametrize("name, theta", [
    ("pow3", (0.9, 0.5, 0.8)), ("linear", (0.02, 0.3)), ("logx_linear", (0.1, 0.4)),
    ("exp4", (0.85, 0.5, 0.2, 0.9)), ("dr_hill_zero_background", (0.9, 1.5, 3.0)), ("ilog2", (0.9, 0.2)),
])
def test_fit_recovers_parameters_of_a_synthetic_curve(name, theta):
    curve = next(c for c in CURVE_FUNCTIONS if c.name == name)
    x = np.arange(1, 16, dtype=float)
    with np.errstate(divide="ignore"):
        y = curve.f(x, *theta)
    if name == "ilog2":
        y[0] = 0.5  # undefined at epoch 1 (log 1 = 0): that point is not used
    fitted = fit_curve(curve, y)
    assert fitted is not None
    assert fitted == pytest.approx(theta, rel=1e-3, abs=1e-4)


def test_too_few_points_means_no_fit():
    pow4 = next(c for c in CURVE_FUNCTIONS if c.name == "pow4")
    assert fit_curve(pow4, np.array([0.1, 0.2, 0.3])) is None  # 4 parameters, 3 points


def test_filter_keeps_agreeing_models_and_drops_outliers():
    x = np.arange(1, 11, dtype=float)
    y = 0.9 - 0.5 * x ** -0.8
    model = CurveModel(20, np.random.default_rng(0))
    model.trial_history, model.point_num = y, len(y)
    model.fit_theta()
    model.filter_curve()
    names = [c.name for c in model.effective_model]
    assert "pow3" in names                    # the true family
    assert "linear" not in names              # a straight line extrapolates far off at epoch 20
    assert len(names) >= LEAST_FITTED_FUNCTION


def test_prediction_of_a_power_law_curve():
    x = np.arange(1, 21, dtype=float)
    y = 0.9 - 0.5 * x ** -0.8
    pred = CurveModel(20, np.random.default_rng(0)).predict(y[:10])
    assert pred == pytest.approx(y[-1], abs=0.02)


def test_prediction_none_when_the_fit_does_not_converge():
    # two points: only the 2-parameter models can be fitted, fewer than LEAST_FITTED_FUNCTION
    assert CurveModel(20, np.random.default_rng(0)).predict([0.3, 0.5]) is None
    assert CurveModel(20).predict([]) is None


def test_seeded_prediction_is_reproducible():
    y = [0.3, 0.45, 0.55, 0.6, 0.63, 0.66, 0.67]
    a = CurvefittingAssessor(seed=3).predict(y)
    b = CurvefittingAssessor(seed=3).predict(y)
    assert a == b and a is not None


class FixedPrediction(CurvefittingAssessor):
    """The assess rules with a known prediction: ``predict`` is the only part replaced."""

    def __init__(self, prediction, **kw):
        super().__init__(**kw)
        self.prediction = prediction
        self.predicted_at: list[int] = []

    def predict(self, history):
        self.predicted_at.append(len(history))
        return self.prediction


def finished(assessor, value, trial="done"):
    assessor.assess_trial(trial, [value])
    assessor.trial_end(trial, True)


def test_good_without_history_of_finished_trials():
    a = FixedPrediction(0.0)
    assert a.assess_trial("t", [0.1] * 10) is AssessResult.Good
    assert a.predicted_at == []


def test_assesses_at_start_step_then_every_gap():
    a = FixedPrediction(1.0, start_step=6, gap=2)
    finished(a, 0.9)
    results = [a.assess_trial("t", [0.5] * n) for n in range(1, 15)]
    assert a.predicted_at == [6, 8, 10, 12, 14]
    assert all(r is AssessResult.Good for r in results)


def test_gap_counts_from_the_last_judgment_when_calls_are_skipped():
    a = FixedPrediction(1.0, start_step=6, gap=3)
    finished(a, 0.9)
    for n in (7, 8, 9, 10, 13):  # the history grew by more than one between calls
        a.assess_trial("t", [0.5] * n)
    assert a.predicted_at == [7, 10, 13]


def test_threshold_rule():
    # best final 0.9, threshold 0.95 -> standard 0.855; Good only when strictly above
    for prediction, expected in ((0.86, AssessResult.Good), (0.855, AssessResult.Bad), (0.5, AssessResult.Bad)):
        a = FixedPrediction(prediction, start_step=1)
        finished(a, 0.9)
        finished(a, 0.4, "worse")
        assert a.assess_trial("t", [0.1]) is expected


def test_non_convergence_is_good():
    a = FixedPrediction(None, start_step=1)
    finished(a, 0.9)
    assert a.assess_trial("t", [0.1, 0.2]) is AssessResult.Good
    real = CurvefittingAssessor(start_step=2, seed=0)
    finished(real, 0.9)
    assert real.assess_trial("t", [0.01, 0.02]) is AssessResult.Good  # 2 points: prediction None


def test_best_comes_from_successful_trials_last_result():
    a = FixedPrediction(0.0)
    a.assess_trial("ok", [0.3, 0.8, 0.7])
    a.assess_trial("failed", [0.99])
    a.trial_end("failed", False)
    assert a.completed_best_performance is None
    a.trial_end("ok", True)
    assert a.completed_best_performance == 0.7
    a.assess_trial("ok2", [{"default": 0.75, "loss": 1}])
    a.trial_end("ok2", True)
    assert a.completed_best_performance == 0.75


def test_real_assessor_stops_a_poor_curve_and_keeps_a_good_one():
    x = np.arange(1, 21, dtype=float)
    good = list(0.9 - 0.5 * x ** -0.8)
    poor = list(0.5 - 0.4 * x ** -0.8)
    a = CurvefittingAssessor(epoch_num=20, start_step=6, seed=0)
    a.assess_trial("first", good)
    a.trial_end("first", True)
    assert a.assess_trial("poor", poor[:6]) is AssessResult.Bad
    assert a.assess_trial("good", good[:6]) is AssessResult.Good


def test_defaults_and_bad_args():
    a = CurvefittingAssessor()
    assert (a.target_pos, a.start_step, a.threshold, a.gap) == (20, 6, 0.95, 1)
    for kwargs, field in (({"epoch_num": 0}, "epoch_num"), ({"gap": 0}, "gap"), ({"start_step": -1}, "start_step"),
                          ({"threshold": 0}, "threshold"), ({"epoch_num": "20"}, "epoch_num")):
        with pytest.raises(ValueError, match=field):
            CurvefittingAssessor(**kwargs)
    built = create_algorithm("assessor", "Curvefitting", {"epoch_num": 30, "start_step": 5, "threshold": 0.9, "gap": 2})
    assert isinstance(built, CurvefittingAssessor) and built.target_pos == 30


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["pow", "exp", "log", "weibull"])
def test_predictions_track_many_synthetic_curves(shape):
    x = np.arange(1, 31, dtype=float)
    curves = {
        "pow": 0.92 - 0.6 * x ** -0.7,
        "exp": 0.85 - 0.5 * np.exp(-0.15 * x),
        "log": 0.3 + 0.15 * np.log(x),
        "weibull": 0.9 - 0.8 * np.exp(-(0.1 * x) ** 1.2),
    }
    rng = np.random.default_rng(0)
    y = curves[shape]
    errors, naive = [], []
    for n in (8, 12, 16):
        noisy = y[:n] + rng.normal(0, 0.005, n)
        pred = CurveModel(30, np.random.default_rng(1)).predict(noisy)
        assert pred is not None
        errors.append(abs(pred - y[-1]))
        naive.append(abs(noisy[-1] - y[-1]))  # "the curve stays where it is"
    # extrapolation beats the last observed value on average, and is never wildly off
    assert np.mean(errors) < np.mean(naive) and max(errors) < 0.3
