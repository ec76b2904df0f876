"""Quality of the core tuners vs Optuna 5's TPE on standard test functions (minimization).

Run: python benchmarks/tuner_quality_core.py [--evals 60] [--seeds 10] [--funcs branin,hartmann6,rosenbrock4,mixed]
     python benchmarks/tuner_quality_core.py --concurrency 8 --evals 80   (Constant Liar comparison)
     python benchmarks/tuner_quality_core.py --randint-order --evals 40 --seeds 20
Prints a markdown table of the median (and mean) best value found after N evaluations.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np


def branin(x1, x2):
    a, b, c, r, s, t = 1, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(*x):
    x = np.asarray(x)
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def rosenbrock(*x):
    x = np.asarray(x)
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def mixed(x1, x2, act, lr):
    """Branin over a quantized x1 and integer x2, plus a categorical offset and a log-scale
    term: exercises the discrete, categorical and log encodings (optimum 0.397887)."""
    return branin(x1, x2) + {"a": 0.0, "b": 1.0, "c": 5.0}[act] + (math.log10(lr) + 3) ** 2


MIXED_SPACE = {"x1": {"_type": "quniform", "_value": [-5, 10, 0.05]}, "x2": {"_type": "randint", "_value": [0, 16]},
               "act": {"_type": "choice", "_value": ["c", "b", "a"]}, "lr": {"_type": "loguniform", "_value": [1e-5, 1e-1]}}

FUNCS = {
    "branin": (branin, [(-5, 10), (0, 15)], 0.397887),
    "hartmann6": (hartmann6, [(0, 1)] * 6, -3.32237),
    "rosenbrock4": (rosenbrock, [(-5, 10)] * 4, 0.0),
    "mixed": (mixed, None, 0.397887),
}


def run_nniray(tuner_cls, kwargs, func, bounds, evals, seed):
    t = tuner_cls(optimize_mode="minimize", seed=seed, **kwargs)
    if bounds is None:
        t.update_search_space(MIXED_SPACE)
    else:
        t.update_search_space({f"x{i}": {"_type": "uniform", "_value": list(b)} for i, b in enumerate(bounds)})
    best = math.inf
    for i in range(evals):
        p = t.generate_parameters(i)
        y = func(**p) if bounds is None else func(*[p[f"x{j}"] for j in range(len(bounds))])
        t.receive_trial_result(i, p, y)
        t.trial_end(i, True)
        best = min(best, y)
    return best


def run_parallel(tuner_cls, kwargs, func, bounds, evals, seed, concurrency):
    """Asynchronous loop with `concurrency` pending trials; the oldest finishes first."""
    from collections import deque
    t = tuner_cls(optimize_mode="minimize", seed=seed, **kwargs)
    t.update_search_space({f"x{i}": {"_type": "uniform", "_value": list(b)} for i, b in enumerate(bounds)})
    pending, best, nxt = deque(), math.inf, 0
    while nxt < concurrency:
        pending.append((nxt, t.generate_parameters(nxt)))
        nxt += 1
    done = 0
    while done < evals:
        pid, p = pending.popleft()
        y = func(*[p[f"x{j}"] for j in range(len(bounds))])
        t.receive_trial_result(pid, p, y)
        t.trial_end(pid, True)
        best, done = min(best, y), done + 1
        if nxt < evals:
            pending.append((nxt, t.generate_parameters(nxt)))
            nxt += 1
    return best


def parallel_table(evals: int, seeds: int, concurrency: int, funcs: list) -> None:
    from nniray.strategies.random_tuner import RandomTuner
    from nniray.strategies.tpe import TpeTuner
    rows = {
        "TPE, parallel_optimize=False": (TpeTuner, {}),
        "TPE, Constant Liar min": (TpeTuner, {"parallel_optimize": True, "constant_liar_type": "min"}),
        "TPE, Constant Liar mean": (TpeTuner, {"parallel_optimize": True, "constant_liar_type": "mean"}),
        "TPE, Constant Liar max": (TpeTuner, {"parallel_optimize": True, "constant_liar_type": "max"}),
        "Random": (RandomTuner, {}),
    }
    print(f"{evals} evaluations, {concurrency} concurrent trials (oldest finishes first), seeds 0..{seeds - 1}; "
          f"median (mean) of the best value\n")
    print("| tuner | " + " | ".join(funcs) + " |")
    print("|---|" + "---|" * len(funcs))
    for name, (cls, kw) in rows.items():
        cells = []
        for f in funcs:
            func, bounds, _ = FUNCS[f]
            bests = [run_parallel(cls, kw, func, bounds, evals, s, concurrency) for s in range(seeds)]
            cells.append(f"{np.median(bests):.4g} ({np.mean(bests):.4g})")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def randint_order_table(evals: int, seeds: int) -> None:
    """TPE on (n - 37)^2 + (m - 81)^2 with n, m as randint[0, 100) (modelled as ordered integers)
    vs the same integers as an unordered choice."""
    from nniray.strategies.tpe import TpeTuner
    print(f"{evals} evaluations, seeds 0..{seeds - 1}; best value found, median (mean)\n")
    print("| encoding | best |\n|---|---|")
    for kind in ("randint", "choice"):
        if kind == "randint":
            sp = {k: {"_type": "randint", "_value": [0, 100]} for k in ("n", "m")}
        else:
            sp = {k: {"_type": "choice", "_value": list(range(100))} for k in ("n", "m")}
        bests = []
        for seed in range(seeds):
            t = TpeTuner(optimize_mode="minimize", seed=seed)
            t.update_search_space(sp)
            best = math.inf
            for i in range(evals):
                p = t.generate_parameters(i)
                y = (p["n"] - 37) ** 2 + (p["m"] - 81) ** 2
                t.receive_trial_result(i, p, y)
                best = min(best, y)
            bests.append(best)
        print(f"| {kind} | {np.median(bests):.4g} ({np.mean(bests):.4g}) |")


def run_optuna(kwargs, func, bounds, evals, seed):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, **kwargs))
    def objective(tr):
        if bounds is None:
            return func(tr.suggest_float("x1", -5, 10, step=0.05), tr.suggest_int("x2", 0, 15),
                        tr.suggest_categorical("act", ["c", "b", "a"]), tr.suggest_float("lr", 1e-5, 1e-1, log=True))
        return func(*[tr.suggest_float(f"x{i}", *b) for i, b in enumerate(bounds)])
    study.optimize(objective, n_trials=evals)
    return study.best_value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--evals", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--funcs", default="branin,hartmann6,rosenbrock4,mixed")
    ap.add_argument("--only", default="")
    ap.add_argument("--tpe-args", default="", help="python dict literal for TpeTuner tpe_args")
    ap.add_argument("--concurrency", type=int, default=0, help="compare Constant Liar settings at this concurrency")
    ap.add_argument("--randint-order", action="store_true", help="ordered randint vs unordered choice in TPE")
    args = ap.parse_args()
    if args.randint_order:
        randint_order_table(args.evals, args.seeds)
        return
    if args.concurrency:
        parallel_table(args.evals, args.seeds, args.concurrency, [f for f in args.funcs.split(",") if f != "mixed"])
        return
    import importlib
    def cls(mod, name):
        return lambda *a, **k: getattr(importlib.import_module(f"nniray.strategies.{mod}"), name)(*a, **k)
    AnnealTuner, EvolutionTuner = cls("anneal", "AnnealTuner"), cls("evolution", "EvolutionTuner")
    RandomTuner, TpeTuner = cls("random_tuner", "RandomTuner"), cls("tpe", "TpeTuner")
    extra = eval(args.tpe_args) if args.tpe_args else {}
    algos = {
        "nniray TPE": lambda f, b, s: run_nniray(TpeTuner, {"tpe_args": extra} if extra else {}, f, b, args.evals, s),
        "nniray TPE (independent)": lambda f, b, s: run_nniray(TpeTuner, {"tpe_args": {**extra, "multivariate": False}}, f, b, args.evals, s),
        "Optuna TPE (default)": lambda f, b, s: run_optuna({}, f, b, args.evals, s),
        "Optuna TPE (multivariate=False)": lambda f, b, s: run_optuna({"multivariate": False}, f, b, args.evals, s),
        "nniray Anneal": lambda f, b, s: run_nniray(AnnealTuner, {}, f, b, args.evals, s),
        "nniray Evolution": lambda f, b, s: run_nniray(EvolutionTuner, {}, f, b, args.evals, s),
        "nniray Random": lambda f, b, s: run_nniray(RandomTuner, {}, f, b, args.evals, s),
    }
    if args.only:
        algos = {k: v for k, v in algos.items() if any(o in k for o in args.only.split(","))}
    funcs = args.funcs.split(",")
    print(f"{args.evals} evaluations, seeds 0..{args.seeds - 1}; median (mean) of the best value; optimum in header\n")
    print("| algorithm | " + " | ".join(f"{f} ({FUNCS[f][2]})" for f in funcs) + " | time/run |")
    print("|---|" + "---|" * (len(funcs) + 1))
    for name, fn in algos.items():
        cells, t0 = [], time.perf_counter()
        for f in funcs:
            func, bounds, _ = FUNCS[f]
            bests = [fn(func, bounds, s) for s in range(args.seeds)]
            cells.append(f"{np.median(bests):.4g} ({np.mean(bests):.4g})")
        dt = (time.perf_counter() - t0) / (len(funcs) * args.seeds)
        print(f"| {name} | " + " | ".join(cells) + f" | {dt:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
