"""Per-trial cost of the trial runner without Ray: a trivial command trial (one FINAL line
written by bash) and a trivial function trial, run back to back on one TrialRunner.  Command
trials now start under the supervisor (actors/trial_supervisor.py); ``--bare`` also times the
same bash command started directly, for the supervisor's share.

    nice -n 10 python benchmarks/trial_runner_overhead.py --n 200
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time

from nniray import trial as nni
from nniray.actors.trial_runner import TrialRunner

CMD = "echo '{\"type\": \"FINAL\", \"value\": 1}' >> $NNI_SYS_DIR/.nni/metrics"


def _fn(params):
    nni.report_intermediate_result(0.5)
    nni.report_final_result(params["x"])


def run(kind: str, n: int, root: str) -> list[float]:
    runner = TrialRunner(None, 0, "bench")
    times = []
    for i in range(n):
        spec = {"trial_id": f"t{i}", "sequence_id": i, "hyper_params": {"parameter_id": i, "parameters": {"x": 1}},
                "trial_dir": f"{root}/{kind}/t{i}", "code_dir": root, "attempt": 0,
                "function": _fn if kind == "function" else None, "command": CMD}
        t = time.perf_counter()
        out = runner.run(spec)
        times.append(time.perf_counter() - t)
        assert out["status"] == "SUCCEEDED", out
        runner.ack([spec["trial_id"]])
    return times


def bare(n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["bash", "-c", "exit 0"], check=True)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--bare", action="store_true")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="nniray-bench-")
    try:
        rows = [("function trial", run("function", args.n, root)), ("command trial", run("command", args.n, root))]
        if args.bare:
            rows.append(("bare `bash -c 'exit 0'`", bare(args.n)))
        for name, ts in rows:
            print(f"{name:28s} median {statistics.median(ts) * 1000:7.2f} ms  p90 "
                  f"{sorted(ts)[int(len(ts) * 0.9)] * 1000:7.2f} ms  ({len(ts)} runs)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
