"""Time per suggestion of the core tuners at a given number of observations.

Run: python benchmarks/tuner_speed_core.py [--obs 100,1000] [--reps 200]
Search space: 6 parameters (uniform, loguniform, quniform, randint, choice of 4, normal).
For each tuner, N random results are imported first, then ``generate_parameters`` is timed
(median over reps; each call sees the same N observations).  Prints a markdown table of wall
time and, in parentheses, the process CPU time (what the call costs on a loaded shared machine,
where wall time also counts waiting for a core).
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import time

import numpy as np

SPACE = {
    "u": {"_type": "uniform", "_value": [0, 1]},
    "lr": {"_type": "loguniform", "_value": [1e-5, 1e-1]},
    "q": {"_type": "quniform", "_value": [0, 100, 5]},
    "n": {"_type": "randint", "_value": [1, 50]},
    "act": {"_type": "choice", "_value": ["relu", "tanh", "gelu", "silu"]},
    "z": {"_type": "normal", "_value": [0, 1]},
}

TUNERS = [
    ("Random", "random_tuner", "RandomTuner", {}),
    ("TPE", "tpe", "TpeTuner", {}),
    ("TPE (independent)", "tpe", "TpeTuner", {"tpe_args": {"multivariate": False}}),
    ("TPE (Constant Liar, 8 pending)", "tpe", "TpeTuner", {"parallel_optimize": True}),
    ("Anneal", "anneal", "AnnealTuner", {}),
    ("Evolution", "evolution", "EvolutionTuner", {}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--obs", default="100,1000")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--compare", action="store_true", help="also time hyperopt's and Optuna's TPE")
    args = ap.parse_args()
    obs_list = [int(x) for x in args.obs.split(",")]
    print("| tuner | " + " | ".join(f"{n} observations" for n in obs_list) + " |")
    print("|---|" + "---|" * len(obs_list))
    for label, mod, cls_name, kwargs in TUNERS:
        try:
            cls = getattr(importlib.import_module(f"nniray.strategies.{mod}"), cls_name)
        except ImportError:
            continue
        cells = []
        for n in obs_list:
            t = cls(seed=0, **kwargs)
            t.update_search_space(SPACE)
            rng = np.random.default_rng(1)
            from nniray.search_space import parse
            sp = parse(SPACE)
            t.import_data([{"parameter": sp.sample(rng), "value": float(rng.random())} for _ in range(n)])
            pid = 10**6
            if kwargs.get("parallel_optimize"):
                for _ in range(8):
                    t.generate_parameters(pid)
                    pid += 1
            times, cpu = [], []
            for _ in range(args.reps):
                c0, t0 = time.process_time(), time.perf_counter()
                t.generate_parameters(pid)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                if not kwargs.get("parallel_optimize"):
                    t.trial_end(pid, False)
                pid += 1
            cells.append(f"{statistics.median(times) * 1e3:.3f} ms (cpu {statistics.median(cpu) * 1e3:.3f} ms)")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    if args.compare:
        print(f"| hyperopt {hyperopt_version()} tpe.suggest | " + " | ".join(f"{hyperopt_time(n) * 1e3:.3f} ms" for n in obs_list) + " |")
        print(f"| Optuna {optuna_version()} TPESampler (default) | " + " | ".join(f"{optuna_time(n) * 1e3:.3f} ms" for n in obs_list) + " |")


def hyperopt_version():
    import hyperopt
    return hyperopt.__version__


def optuna_version():
    import optuna
    return optuna.__version__


def hyperopt_time(n: int, reps: int = 10) -> float:
    """Seconds per TPE suggestion after n random trials (objective cost excluded)."""
    import numpy as np
    from hyperopt import Trials, fmin, hp, rand, tpe
    space = {"u": hp.uniform("u", 0, 1), "lr": hp.loguniform("lr", np.log(1e-5), np.log(1e-1)),
             "q": hp.quniform("q", 0, 100, 5), "n": hp.randint("n", 1, 50),
             "act": hp.choice("act", ["relu", "tanh", "gelu", "silu"]), "z": hp.normal("z", 0, 1)}
    trials = Trials()
    rng = np.random.default_rng(0)
    fmin(lambda p: float(rng.random()), space, algo=rand.suggest, max_evals=n, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    t0 = time.perf_counter()
    fmin(lambda p: float(rng.random()), space, algo=tpe.suggest, max_evals=n + reps, trials=trials,
         rstate=np.random.default_rng(1), show_progressbar=False)
    return (time.perf_counter() - t0) / reps


def optuna_time(n: int, reps: int = 10) -> float:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import numpy as np
    rng = np.random.default_rng(0)

    def objective(tr):
        tr.suggest_float("u", 0, 1), tr.suggest_float("lr", 1e-5, 1e-1, log=True)
        tr.suggest_float("q", 0, 100, step=5), tr.suggest_int("n", 1, 49)
        tr.suggest_categorical("act", ["relu", "tanh", "gelu", "silu"]), tr.suggest_float("z", -3, 3)
        return float(rng.random())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=n)
    study.sampler = optuna.samplers.TPESampler(seed=1, n_startup_trials=0)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=reps)
    return (time.perf_counter() - t0) / reps


if __name__ == "__main__":
    main()
