"""Benchmark of this area's algorithms on synthetic problems (no Ray, no data download).

    python benchmarks/tuners_hb.py > docs/benchmarks/tuners-hb.md

1. Hyperband vs BOHB vs random search on a multi-fidelity objective, driven through the advisor
   protocol with 4 concurrent trials; best full-budget result after a fixed total budget.
2. Curvefitting assessor on 60 synthetic learning curves: epochs saved, whether the best curve
   survives, and the time of one assessment.
3. PBT on a toy "training" whose best learning rate decays over time, vs the same population
   without exploit/explore.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

import nniray
from nniray.assessor import AssessResult
from nniray.runtime.msg_dispatcher_base import CommandType, MetricType
from nniray.strategies.bohb import BOHB
from nniray.strategies.curvefitting import CurvefittingAssessor
from nniray.strategies.hyperband import TRIAL_BUDGET, Hyperband
from nniray.strategies.pbt import PBTTuner

SPACE = {
    "x": {"_type": "uniform", "_value": [0, 1]},
    "y": {"_type": "uniform", "_value": [0, 1]},
    "lr": {"_type": "loguniform", "_value": [1e-4, 1]},
    "act": {"_type": "choice", "_value": ["relu", "tanh", "sigmoid"]},
}
MAX_BUDGET = 27
TOTAL_BUDGET = 2500


def quality(p: dict) -> float:
    """Final accuracy of a config in [0, ~0.95]."""
    q = 0.95 - 0.6 * ((p["x"] - 0.7) ** 2 + (p["y"] - 0.2) ** 2) - 0.05 * (math.log10(p["lr"]) + 2) ** 2
    q -= {"relu": 0.0, "tanh": 0.03, "sigmoid": 0.1}[p["act"]]
    return q


def observed(p: dict, budget: float, rng: np.random.Generator) -> float:
    """Accuracy after ``budget`` epochs: saturating toward quality, noisy at small budgets."""
    return quality(p) * (1 - math.exp(-budget / 4)) + rng.normal(0, 0.02 / math.sqrt(budget))


def run_advisor(make, seed: int, concurrency: int = 4, total: float = TOTAL_BUDGET) -> float:
    """``make(k)`` builds the advisor; when one says NoMoreTrialJobs (a finished Hyperband
    execution) the next execution ``make(k+1)`` starts, as a user would rerun it."""
    rng = np.random.default_rng(seed + 1000)
    k = 0
    adv = make(k)
    adv.handle_initialize(SPACE)
    adv.drain()
    used, best, running = 0.0, -math.inf, []
    while used < total:
        adv.handle_request_trial_jobs(concurrency - len(running))
        for cmd, data in adv.drain():
            if cmd == CommandType.NewTrialJob:
                running.append(nniray.load(data))
            elif cmd == CommandType.NoMoreTrialJobs:
                k += 1
                adv = make(k)
                adv.handle_initialize(SPACE)
                adv.drain()
        if not running:
            continue
        job = running.pop(0)
        b = job["parameters"][TRIAL_BUDGET]
        used += b
        v = observed(job["parameters"], b, rng)
        if b == MAX_BUDGET:
            best = max(best, quality(job["parameters"]))
        adv.handle_report_metric_data({"parameter_id": job["parameter_id"], "trial_job_id": "t", "type": MetricType.FINAL,
                                       "sequence": 0, "value": nniray.dump(v)})
        adv.handle_trial_end({"trial_job_id": "t", "event": "SUCCEEDED", "hyper_params": nniray.dump(job)})
    return best


def run_random(seed: int, total: float = TOTAL_BUDGET) -> float:
    from nniray.search_space import parse
    space, rng = parse(SPACE), np.random.default_rng(seed)
    return max(quality(space.sample(rng)) for _ in range(int(total // MAX_BUDGET)))


def bench_advisors(seeds: range) -> list[str]:
    lines = [f"| Total budget (epochs) | Method | best true accuracy found, mean over {len(seeds)} seeds | std | "
             "regret | seconds per run |", "|---|---|---|---|---|---|"]
    # 423 epochs = one Hyperband execution with R=27, eta=3 (brackets 108 + 99 + 108 + 108)
    for total in (423, TOTAL_BUDGET):
        methods = {
            "Random search (full budget each)": lambda s: run_random(s, total),
            "Hyperband (R=27, eta=3, parallelism; rerun when done)": lambda s: run_advisor(
                lambda k: Hyperband(R=MAX_BUDGET, eta=3, seed=100 * s + k), s, total=total),
            "BOHB (min 1, max 27, eta=3)": lambda s: run_advisor(
                lambda k: BOHB(min_budget=1, max_budget=MAX_BUDGET, eta=3, seed=s), s, total=total),
        }
        for name, run in methods.items():
            t = time.perf_counter()
            vals = [run(s) for s in seeds]
            dt = (time.perf_counter() - t) / len(seeds)
            lines.append(f"| {total} | {name} | {np.mean(vals):.4f} | {np.std(vals):.4f} | {0.95 - np.mean(vals):.4f} "
                         f"| {dt:.2f} |")
    return lines


def bench_curvefitting(n_curves: int = 60, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    epochs = 20
    x = np.arange(1, epochs + 1)
    curves = []
    for _ in range(n_curves):
        asym, rate, power = rng.uniform(0.5, 0.95), rng.uniform(0.3, 0.8), rng.uniform(0.5, 1.2)
        curves.append(asym - rate * asym * x ** -power + rng.normal(0, 0.005, epochs))
    assessor = CurvefittingAssessor(epoch_num=epochs, start_step=6, threshold=0.95, gap=1, seed=seed)
    used, stopped, times = 0, 0, []
    best_final_seen = -math.inf
    best_idx = int(np.argmax([c[-1] for c in curves]))
    best_kept = True
    for i, c in enumerate(curves):
        ran = epochs
        for n in range(1, epochs + 1):
            t = time.perf_counter()
            res = assessor.assess_trial(i, list(c[:n]))
            if n >= 6 and assessor.completed_best_performance is not None:
                times.append(time.perf_counter() - t)
            if res is AssessResult.Bad:
                ran = n
                break
        used += ran
        if ran < epochs:
            stopped += 1
            best_kept &= i != best_idx
            assessor.trial_end(i, False)
        else:
            best_final_seen = max(best_final_seen, c[-1])
            assessor.trial_end(i, True)
    return [
        "| Curves | stopped early | epochs run / without assessor | best curve kept | assess time median / p95 (ms) |",
        "|---|---|---|---|---|",
        f"| {n_curves} | {stopped} | {used} / {n_curves * epochs} ({100 * (1 - used / (n_curves * epochs)):.0f}% saved) "
        f"| {'yes' if best_kept else 'no'} | {1000 * np.median(times):.0f} / {1000 * np.percentile(times, 95):.0f} |",
    ]


def pbt_run(exploit: bool, seed: int, steps: int = 20, population: int = 8) -> float:
    """Toy training: the best lr decays 0.7x per step; each step adds progress that falls off with
    the lr's distance (in decades) from the current best lr.  ``exploit=False`` runs the same initial population
    with fixed hyperparameters and no copying (independent training)."""
    import tempfile
    tuner = PBTTuner(all_checkpoint_dir=tempfile.mkdtemp(), population_size=population, seed=seed, fraction=0.25)
    tuner.update_search_space({"lr": {"_type": "loguniform", "_value": [1e-4, 1]}})
    rng = np.random.default_rng(seed)
    state: dict[str, float] = {}
    fixed = tuner.generate_multiple_parameters(list(range(population)))
    pid = population
    best = 0.0
    for step in range(steps):
        target = 0.3 * 0.7 ** step
        if step == 0 or not exploit:
            batch = fixed if step == 0 else [dict(p, load_checkpoint_dir=f"m{i}", save_checkpoint_dir=f"m{i}")
                                             for i, p in enumerate(fixed)]
            ids = list(range(population))
        else:
            ids = list(range(pid, pid + population))
            batch = tuner.generate_multiple_parameters(ids)
            pid += population
        for i, (tid, params) in enumerate(zip(ids, batch)):
            load = params["load_checkpoint_dir"] if exploit or step == 0 else f"m{i}"
            if not exploit and step == 0:
                load = f"m{i}"
            acc = state.get(load, 0.0)
            gain = 0.05 * math.exp(-2 * abs(math.log10(params["lr"] / target)))
            acc = acc + gain + rng.normal(0, 0.001)
            save = params["save_checkpoint_dir"] if exploit else f"m{i}"
            state[save] = acc
            best = max(best, acc) if step == steps - 1 else best
            if exploit:
                tuner.receive_trial_result(tid, params, acc)
                tuner.trial_end(tid, True)
    return best


def bench_pbt(seeds: range) -> list[str]:
    with_pbt = [pbt_run(True, s) for s in seeds]
    without = [pbt_run(False, s) for s in seeds]
    return ["| Population 8, 20 steps | best score, mean over 5 seeds |", "|---|---|",
            f"| PBT (fraction 0.25, factors 1.2/0.8) | {np.mean(with_pbt):.4f} |",
            f"| Same population, no exploit/explore | {np.mean(without):.4f} |"]


def main() -> None:
    seeds = range(5)
    out = ["# Benchmarks: Hyperband, BOHB, Curvefitting, PBT", "",
           "Command: `OMP_NUM_THREADS=1 python benchmarks/tuners_hb.py` (loaded 2-core machine, no Ray: "
           "the advisors are driven through the MsgDispatcherBase protocol by the script).", "",
           "## Hyperband vs BOHB (synthetic multi-fidelity objective, 4 parameters, max budget 27 epochs)", "",
           "True accuracy of the best configuration that was run at the full budget (optimum 0.95), 4 concurrent "
           "trials.", ""]
    out += bench_advisors(seeds)
    out += ["", "## Curvefitting assessor (60 power-law learning curves, epoch_num=20, start_step=6)", ""]
    out += bench_curvefitting()
    out += ["", "## PBT (toy training whose best learning rate decays 0.7x per step)", ""]
    out += bench_pbt(seeds)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
