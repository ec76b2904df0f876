"""One benchmark run (contender × problem × seed) and one suggestion-timing measurement.

Both are plain functions so that a process pool (main runs) or a subprocess with a timeout
(timings) can execute them.  Suggestion time is the time of ``ask()`` plus ``tell()`` of the
result, i.e. what the optimizer costs per evaluation, objective excluded.  It is measured as
**process CPU time** (``time.process_time``; every library runs single-threaded here,
OMP_NUM_THREADS=1), because the benchmark machine is shared and its wall-clock time is inflated
several-fold by other people's load; wall time is recorded alongside.
"""
from __future__ import annotations

import os
import time
import traceback

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np


def _quiet() -> None:
    import logging
    import warnings
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass


def run_job(contender: str, problem: str, seed: int, evals: int, cap_s: float) -> dict:
    """Run ``evals`` evaluations.  If the optimizer's own CPU time (sum of ask+tell) passes ``cap_s``,
    the rest of the budget is filled with random configurations and ``capped_at`` says from
    which evaluation on (flagged in the report)."""
    _quiet()
    from nniray.search_space import parse
    from .contenders import build
    from .problems import PROBLEMS
    prob = PROBLEMS[problem]
    space = parse(prob.search_space)
    rng = np.random.default_rng(10_000 + seed)
    out = {"contender": contender, "problem": problem, "seed": seed, "evals": evals,
           "values": [], "suggest_s": [], "suggest_wall_s": [], "capped_at": None, "error": None}
    clock = time.process_time
    try:
        t0 = time.perf_counter()
        opt = build(contender, prob.search_space, seed, evals)
        out["init_s"] = time.perf_counter() - t0
        spent = 0.0
        for i in range(evals):
            if spent > cap_s:
                if out["capped_at"] is None:
                    out["capped_at"] = i
                params = space.sample(rng)
                out["values"].append(prob(params))
                continue
            t, w = clock(), time.perf_counter()
            params = opt.ask()
            dt, dw = clock() - t, time.perf_counter() - w
            value = prob(params)
            t, w = clock(), time.perf_counter()
            opt.tell(params, value)
            dt, dw = dt + clock() - t, dw + time.perf_counter() - w
            spent += dt
            out["values"].append(value)
            out["suggest_s"].append(dt)
            out["suggest_wall_s"].append(dw)
    except Exception as e:  # noqa: BLE001 - recorded and shown in the report
        out["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        out["traceback"] = traceback.format_exc()[-2000:]
    return out


def timing_job(contender: str, n_obs: int, n_suggest: int, problem: str = "hartmann6", seed: int = 0) -> dict:
    """Load ``n_obs`` random observations (import_data / add-trial), then time ``n_suggest``
    ask+tell steps; returns the median."""
    _quiet()
    from nniray.search_space import parse
    from .contenders import build
    from .problems import PROBLEMS
    prob = PROBLEMS[problem]
    space = parse(prob.search_space)
    rng = np.random.default_rng(seed)
    opt = build(contender, prob.search_space, seed, n_evals=n_obs + n_suggest + 10)
    if hasattr(opt, "observe_random"):
        opt.observe_random(n_obs, prob)
    else:
        data = []
        for _ in range(n_obs):
            p = space.sample(rng)
            data.append((p, prob(p)))
        opt.observe(data)
    times = []
    clock = time.process_time
    for _ in range(n_suggest):
        t = clock()
        params = opt.ask()
        dt = clock() - t
        v = prob(params)
        t = clock()
        opt.tell(params, v)
        times.append(dt + clock() - t)
    return {"contender": contender, "n_obs": n_obs, "times": times, "median_s": float(np.median(times))}


if __name__ == "__main__":  # subprocess entry for timings: prints one JSON line
    import argparse
    import json
    ap = argparse.ArgumentParser()
    ap.add_argument("--contender", required=True)
    ap.add_argument("--obs", type=int, required=True)
    ap.add_argument("--n-suggest", type=int, default=5)
    a = ap.parse_args()
    print("RESULT " + json.dumps(timing_job(a.contender, a.obs, a.n_suggest)))
