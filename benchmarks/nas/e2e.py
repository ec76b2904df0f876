"""End to end on the real runtime: a multi-trial search that trains its models (not the table).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/nas/e2e.py [--trials 16] [--concurrency 2]

RegularizedEvolution on the digits space, each trial training its architecture with the same
recipe as the table; prints wall time, trials per minute and the found model's test accuracy.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from digits_space import DigitsSpace, arch_key, digits_splits, train_and_score  # noqa: E402

import nniray  # noqa: E402
import nniray.nas.strategy as strategy  # noqa: E402
from nniray.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nniray.nas.experiment import RetiariiExeConfig, RetiariiExperiment  # noqa: E402
from nniray.nas.nn import freeze_model  # noqa: E402


def fit(model_cls, splits):
    import torch
    torch.set_num_threads(1)
    val, test = train_and_score(model_cls(), splits)
    nniray.report_final_result({"default": val, "test_acc": test})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--concurrency", type=int, default=2)
    args = p.parse_args()
    exp = RetiariiExperiment(DigitsSpace(), FunctionalEvaluator(fit, splits=digits_splits()),
                             strategy=strategy.RegularizedEvolution(population_size=6, sample_size=3,
                                                                    cycles=args.trials, mutation_prob=0.3, seed=0))
    cfg = RetiariiExeConfig("local")
    cfg.trial_concurrency = args.concurrency
    cfg.max_trial_number = args.trials
    cfg.experiment_working_directory = tempfile.mkdtemp(prefix="nas-e2e-")
    t0 = time.time()
    ok = exp.run(cfg)
    wall = time.time() - t0
    jobs = exp.list_trial_jobs()
    starts = [j.startTime for j in jobs if j.startTime]
    ends = [j.endTime for j in jobs if j.endTime]
    span = (max(ends) - min(starts)) if starts and ends else float("nan")
    best = exp.export_top_models(top_k=1)[0]
    found = [j for j in jobs if j.hyperParameters[0]["parameters"] == best][0].finalMetricData[0].data
    print(f"status {'DONE' if ok else exp.get_status()}; {len(jobs)} trials, "
          f"{sum(j.status == 'SUCCEEDED' for j in jobs)} succeeded")
    print(f"wall time {wall:.1f} s (run() incl. Ray start); first trial start to last end {span:.1f} s; "
          f"{60 * len(jobs) / span:.1f} trials/min")
    print(f"found {arch_key(best)}: val {found['default']:.4f}, test {found['test_acc']:.4f}")


if __name__ == "__main__":
    main()
