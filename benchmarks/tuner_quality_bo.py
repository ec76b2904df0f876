"""Quality of the model-based tuners: mean/median simple regret over seeds on four problems.

    OMP_NUM_THREADS=1 python benchmarks/tuner_quality_bo.py --seeds 5 --tuners GP,bayes_opt,optuna_gp,Random

Prints a markdown table (mean ± std error, median regret per tuner and problem).  External
baselines get the same unit-cube encoding as our tuners where they cannot express a type.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bo_problems import PROBLEMS  # noqa: E402

from nniray.search_space import parse  # noqa: E402

BUDGET = {"branin": 40, "hartmann6": 60, "rosenbrock4": 60, "mixed": 60}


def run_nniray(name, space, f, n, seed, **kw):
    from nniray.strategies import registry
    tuner = registry.create_algorithm("tuner", name, dict(optimize_mode="minimize", seed=seed, **kw))
    tuner.update_search_space(space)
    vals = []
    for i in range(n):
        p = tuner.generate_parameters(i)
        v = f(p)
        vals.append(v)
        tuner.receive_trial_result(i, p, v)
    return vals


def run_random(space, f, n, seed):
    sp = parse(space)
    rng = np.random.default_rng(seed)
    return [f(sp.sample(rng)) for _ in range(n)]


def run_bayes_opt(space, f, n, seed):
    from bayes_opt import BayesianOptimization
    sp = parse(space)
    bo = BayesianOptimization(f=None, pbounds={p.key: (0.0, 1.0) for p in sp.params}, verbose=0,
                              random_state=seed, allow_duplicate_points=True)
    vals = []
    for _ in range(n):
        u = bo.suggest()
        p = sp.format({q.key: q.from_unit(u[q.key]) for q in sp.params})
        v = f(p)
        vals.append(v)
        bo.register(params=u, target=-v)
    return vals


def run_optuna_gp(space, f, n, seed):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sp = parse(space)
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed, deterministic_objective=True))
    vals = []
    for _ in range(n):
        t = study.ask()
        p = {}
        for q in sp.params:
            a, b = q.value[0], q.value[1]
            if q.type == "uniform":
                p[q.name] = t.suggest_float(q.name, a, b)
            elif q.type == "loguniform":
                p[q.name] = t.suggest_float(q.name, a, b, log=True)
            elif q.type == "quniform":
                p[q.name] = t.suggest_float(q.name, a, b, step=q.value[2])
            elif q.type == "randint":
                p[q.name] = t.suggest_int(q.name, a, b - 1)
            elif q.type == "choice":
                p[q.name] = t.suggest_categorical(q.name, list(q.value))
            else:
                raise ValueError(q.type)
        v = f(p)
        vals.append(v)
        study.tell(t, v)
    return vals


RUNNERS = {
    "GP": lambda s, f, n, seed: run_nniray("GPTuner", s, f, n, seed),
    "Metis": lambda s, f, n, seed: run_nniray("MetisTuner", s, f, n, seed),
    "SMAC": lambda s, f, n, seed: run_nniray("SMAC", s, f, n, seed),
    "DNGO": lambda s, f, n, seed: run_nniray("DNGOTuner", s, f, n, seed),
    "Random": run_random,
    "bayes_opt": run_bayes_opt,
    "optuna_gp": run_optuna_gp,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--tuners", default="GP,bayes_opt,optuna_gp,Random")
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    tuners = args.tuners.split(",")
    problems = args.problems.split(",")
    rows = []
    for prob in problems:
        space, f, opt = PROBLEMS[prob]
        n = BUDGET[prob]
        for tn in tuners:
            regrets, secs = [], []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                vals = RUNNERS[tn](space, f, n, seed)
                secs.append(time.perf_counter() - t0)
                regrets.append(min(vals) - opt)
            r = np.array(regrets)
            rows.append((prob, n, tn, r.mean(), r.std(ddof=1) / math.sqrt(len(r)) if len(r) > 1 else 0.0,
                         float(np.median(r)), float(np.mean(secs)) / n))
            print(f"{prob} {tn}: mean {r.mean():.4g} median {np.median(r):.4g} "
                  f"({np.mean(secs) / n * 1000:.0f} ms/trial)", file=sys.stderr, flush=True)
    print(f"| problem | trials | tuner | mean regret ± s.e. ({args.seeds} seeds) | median regret | s/trial |")
    print("|---|---|---|---|---|---|")
    for prob, n, tn, m, se, med, spt in rows:
        print(f"| {prob} | {n} | {tn} | {m:.4g} ± {se:.2g} | {med:.4g} | {spt:.3f} |")


if __name__ == "__main__":
    main()
