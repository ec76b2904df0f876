"""The HPO benchmark harness: problems, the regret/rank arithmetic, and a --quick smoke run."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.hpo import problems as P  # noqa: E402
from benchmarks.hpo.report import aggregate, best_so_far  # noqa: E402


def test_synthetic_optima_are_the_known_values():
    assert P.branin({"x1": -math.pi, "x2": 12.275}) == pytest.approx(P.PROBLEMS["branin"].f_star, abs=1e-6)
    assert P.branin({"x1": 9.42478, "x2": 2.475}) == pytest.approx(0.397887, abs=1e-5)
    xs = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
    assert P.hartmann6({f"x{i}": v for i, v in enumerate(xs)}) == pytest.approx(-3.32237, abs=1e-5)
    assert P.rosenbrock4({f"x{i}": 1.0 for i in range(4)}) == 0.0
    assert P.mixed({"x": 1.0, "y": -0.5, "c": 2.0, "k": 7}) == 0.0
    # the choice is categorical in effect: its cost is not monotone in the value
    costs = [P.mixed({"x": 1.0, "y": -0.5, "c": c, "k": 7}) for c in (0.5, 1.0, 2.0, 4.0)]
    assert costs == [1.0, 0.4, 0.0, 0.7]


def test_random_points_never_beat_the_optimum():
    from nniray.search_space import parse
    rng = np.random.default_rng(0)
    for name in ("branin", "hartmann6", "rosenbrock4", "mixed"):
        prob = P.PROBLEMS[name]
        space = parse(prob.search_space)
        assert min(prob(space.sample(rng)) for _ in range(300)) >= prob.f_star - 1e-9


def _rec(c, p, s, values, error=None, capped=None):
    return {"contender": c, "problem": p, "seed": s, "values": values, "suggest_s": [0.001] * len(values),
            "error": error, "capped_at": capped}


def test_regret_reference_and_rank_of_mean_regret():
    recs = [
        _rec("A", "branin", 0, [5.0, 1.397887357729739]), _rec("A", "branin", 1, [2.397887357729739, 3.0]),
        _rec("B", "branin", 0, [0.397887357729739]), _rec("B", "branin", 1, [9.0, 4.397887357729739]),
        # ML task: reference = best error anyone found (0.02)
        _rec("A", "svm_digits", 0, [0.05, 0.03]), _rec("B", "svm_digits", 0, [0.02]),
        _rec("C", "svm_digits", 0, [0.1], error="boom"),
    ]
    agg = aggregate(recs, ["A", "B", "C"], ["branin", "svm_digits"])
    assert agg["ref"]["svm_digits"] == 0.02
    assert agg["stats"][("A", "branin")]["mean"] == pytest.approx(1.5)  # regrets 1 and 2
    assert agg["stats"][("B", "branin")]["mean"] == pytest.approx(2.0)  # regrets 0 and 4
    assert agg["stats"][("B", "branin")]["median"] == pytest.approx(2.0)
    assert agg["stats"][("A", "svm_digits")]["mean"] == pytest.approx(0.01)
    # branin: A 1, B 2 (C absent);  svm: B 1, A 2, C (error) 3
    assert agg["rank_lists"] == {"A": [1.0, 2.0], "B": [2.0, 1.0], "C": [3.0]}
    assert agg["mean_rank"]["A"] == 1.5
    assert list(best_so_far([3, 1, 2, 0.5])) == [3, 1, 1, 0.5]


def test_quick_run_end_to_end(tmp_path):
    out = tmp_path / "hpo.md"
    cmd = [sys.executable, "-m", "benchmarks.hpo.run", "--quick", "--results", str(tmp_path / "r.jsonl"),
           "--out", str(out), "--contenders", "nniray Random", "Optuna TPE", "no such optimizer"]
    cp = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert cp.returncode == 0, cp.stderr[-2000:]
    md = out.read_text()
    for name in ("nniray Random", "Optuna TPE"):
        assert f"| {name} |" in md
    assert "no such optimizer" in md.split("Not available")[1]  # reported, not a crash
    assert "| branin | mixed |" in md.replace("mean rank | ", "")
    assert (tmp_path / "hpo_best_so_far.png").stat().st_size > 1000
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 2  # 2 contenders × 2 problems × 1 seed


def test_unsupported_space_is_not_applicable_not_last():
    recs = [_rec("A", "svm_digits", 0, [0.05]), _rec("B", "svm_digits", 0, [0.03]),
            _rec("M", "svm_digits", 0, [], error="SearchSpaceError: M does not support _type 'loguniform'"),
            _rec("M", "branin", 0, [0.397887357729739]), _rec("A", "branin", 0, [1.0]), _rec("B", "branin", 0, [2.0])]
    agg = aggregate(recs, ["A", "B", "M"], ["branin", "svm_digits"])
    assert ("M", "svm_digits") in agg["unsupported"] and ("M", "svm_digits") not in agg["errors"]
    assert agg["rank_lists"]["M"] == [1.0]
    assert agg["rank_lists"]["A"] == [2.0, 2.0] and agg["rank_lists"]["B"] == [3.0, 1.0]
