"""Time per suggestion of the core tuners at a given number of observations.

Run: python benchmarks/tuner_speed_core.py [--obs 100,1000] [--reps 200]
Search space: 6 parameters (uniform, loguniform, quniform, randint, choice of 4, normal).
For each tuner, N random results are imported first, then ``generate_parameters`` is timed
(median over reps; each call sees the same N observations).  Prints a markdown table.
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
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                t.generate_parameters(pid)
                times.append(time.perf_counter() - t0)
                if not kwargs.get("parallel_optimize"):
                    t.trial_end(pid, False)
                pid += 1
            cells.append(f"{statistics.median(times) * 1e3:.3f} ms")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
