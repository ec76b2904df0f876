"""Median suggestion time of the model-based tuners at 100 / 300 / 1000 observations.

    OMP_NUM_THREADS=1 python benchmarks/tuner_speed_bo.py [--tuners GPTuner,MetisTuner,DNGOTuner,SMAC] [--repeats 5]

The history is imported (``import_data``) from random points of Hartmann-6, so the timing
covers one full suggestion: model fit + acquisition search.  Each timed call ends with
``trial_end(success=True)`` so the state, and the work, is the same for every repeat.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bo_problems import HARTMANN6_SPACE, hartmann6  # noqa: E402

from nniray.search_space import parse  # noqa: E402
from nniray.strategies import registry  # noqa: E402


def time_tuner(name: str, n_obs: int, repeats: int) -> float:
    sp = parse(HARTMANN6_SPACE)
    rng = np.random.default_rng(0)
    data = []
    for _ in range(n_obs):
        p = sp.sample(rng)
        data.append({"parameter": p, "value": -hartmann6(p)})
    tuner = registry.create_algorithm("tuner", name, {"seed": 0})
    tuner.update_search_space(HARTMANN6_SPACE)
    tuner.import_data(data)
    tuner.generate_parameters(-1)  # warm-up: imports, DNGO's network training
    tuner.trial_end(-1, True)
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        tuner.generate_parameters(i)
        times.append(time.perf_counter() - t0)
        tuner.trial_end(i, True)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tuners", default="GPTuner,MetisTuner,DNGOTuner,SMAC")
    ap.add_argument("--sizes", default="100,300,1000")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    sizes = [int(s) for s in args.sizes.split(",")]
    print("| tuner | " + " | ".join(f"{n} obs (s)" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in args.tuners.split(","):
        row = [f"{time_tuner(name, n, args.repeats):.3f}" for n in sizes]
        print(f"| {name} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
