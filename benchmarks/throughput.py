"""Trial throughput: nniray vs the anchors, on trivial trials.

    python benchmarks/throughput.py [--function-trials 1000] [--command-trials 200] [--tune-trials 60]

Measures, in one run on one local Ray (started once, not timed):
- nniray function trials (Random tuner, concurrency 2): trials/s and per-trial overhead;
- nniray command trials (a subprocess per trial running ``import nniray``): trials/s;
- bare Ray tasks doing the same work (the floor);
- Ray Tune on the same function: ``tune.Tuner`` defaults, and ``TuneConfig(reuse_actors=True)``.
Writes a markdown table to stdout and, with ``--write``, to docs/benchmarks/throughput.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
import ray  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}


def work(x: float) -> float:
    return (x - 0.3) ** 2


def nniray_trial(params):
    return work(params["x"])


def run_nniray(n: int, command: bool, workdir: str) -> tuple[float, float, float]:
    """Returns (end-to-end seconds from start() to DONE, steady-state seconds from the first
    trial's start to the last trial's end, median gap in ms between consecutive trials on one
    runner: the controller's per-trial overhead)."""
    from nniray.config import build_config
    from nniray.experiment import Experiment
    cfg = {"searchSpace": SPACE, "tuner": {"name": "Random", "classArgs": {"seed": 0}}, "trialConcurrency": 2,
           "maxTrialNumber": n, "experimentWorkingDirectory": workdir}
    if command:
        trial = Path(workdir) / "trial.py"
        trial.write_text("import nniray as nni\np = nni.get_next_parameter()\n"
                         "nni.report_final_result((p['x'] - 0.3) ** 2)\n")
        cfg.update(trialCommand=f"{sys.executable} trial.py", trialCodeDirectory=workdir)
        exp = Experiment(build_config(cfg))
    else:
        cfg["trial_function"] = nniray_trial
        exp = Experiment(build_config(cfg))
    t0 = time.perf_counter()
    exp.start()
    while exp.get_status() not in ("DONE", "ERROR"):
        time.sleep(0.05)
    dt = time.perf_counter() - t0
    trials = exp._store.list_trials()
    done = sum(t["status"] == "SUCCEEDED" for t in trials)
    exp.stop()
    assert done == n, f"only {done}/{n} trials succeeded"
    span = max(t["end_time"] for t in trials) - min(t["start_time"] for t in trials)
    gaps = []
    for node in {t["node"] for t in trials}:
        ts = sorted((t for t in trials if t["node"] == node), key=lambda t: t["start_time"])
        gaps += [b["start_time"] - a["end_time"] for a, b in zip(ts, ts[1:])]
    gaps.sort()
    return dt, span, 1000 * gaps[len(gaps) // 2]


def run_bare_ray(n: int) -> float:
    @ray.remote(num_cpus=1)
    def task(x):
        return work(x)
    ray.get([task.remote(0.5) for _ in range(4)])  # warm the worker pool
    t0 = time.perf_counter()
    ray.get([task.remote(i / n) for i in range(n)])
    return time.perf_counter() - t0


def run_tune(n: int, reuse: bool) -> float:
    from ray import tune

    def trainable(config):
        return {"loss": work(config["x"])}

    tuner = tune.Tuner(trainable, param_space={"x": tune.uniform(0, 1)},
                       tune_config=tune.TuneConfig(num_samples=n, max_concurrent_trials=2, reuse_actors=reuse),
                       run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0))
    t0 = time.perf_counter()
    results = tuner.fit()
    dt = time.perf_counter() - t0
    assert len(results) == n
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--function-trials", type=int, default=1000)
    ap.add_argument("--command-trials", type=int, default=200)
    ap.add_argument("--tune-trials", type=int, default=60)
    ap.add_argument("--bare-tasks", type=int, default=1000)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR", namespace="nniray")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        dt, span, gap = run_nniray(a.function_trials, False, d)
        rows.append(("nniray, function trials", a.function_trials, dt, span, gap))
        dt, span, gap = run_nniray(a.command_trials, True, d)
        rows.append(("nniray, command trials (a process each)", a.command_trials, dt, span, gap))
    rows.append(("bare Ray tasks (floor)", a.bare_tasks, run_bare_ray(a.bare_tasks), None, None))
    rows.append(("Ray Tune, defaults (new actor per trial)", a.tune_trials, run_tune(a.tune_trials, False), None, None))
    rows.append(("Ray Tune, reuse_actors=True", a.tune_trials, run_tune(a.tune_trials, True), None, None))
    lines = ["| runner | trials | seconds end-to-end | trials/s end-to-end | steady-state trials/s "
             "| start-up s | per-trial overhead ms (end-to-end / 2 runners) | controller gap ms (median) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, n, dt, span, gap in rows:
        steady = f"{n / span:.1f}" if span else "-"
        startup = f"{dt - span:.1f}" if span else "-"
        lines.append(f"| {name} | {n} | {dt:.1f} | {n / dt:.1f} | {steady} | {startup} | {2000 * dt / n:.1f} | "
                     f"{'-' if gap is None else f'{gap:.1f}'} |")
    table = "\n".join(lines)
    print(table)
    if a.write:
        out = ROOT / "docs" / "benchmarks" / "throughput.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = "python benchmarks/throughput.py " + " ".join(sys.argv[1:])
        out.write_text(f"## Trial throughput (issue: runtime spine)\n\nCommand: `{cmd}`  \n"
                       f"Machine: 2 cores, no GPU, concurrency 2, Random tuner, trivial trials; "
                       f"{time.strftime('%Y-%m-%d')}.\n\n{table}\n")


if __name__ == "__main__":
    main()
