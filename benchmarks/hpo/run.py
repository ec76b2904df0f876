"""The HPO benchmark in one command.

    python -m benchmarks.hpo.run                       # full: 8 seeds × 100 evals, writes docs/benchmarks/hpo.md
    python -m benchmarks.hpo.run --quick               # smoke: 1 seed × 10 evals, 3 contenders, 2 problems
    python -m benchmarks.hpo.run --report-only         # rebuild the table from saved records

Runs are independent processes' work (a pool of ``--workers``), records are appended to
``--results`` as JSON lines as they finish, so a stopped run resumes where it was.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from . import contenders as C
from .problems import PROBLEMS
from .report import aggregate, markdown, plot
from .runner import run_job

ROOT = Path(__file__).resolve().parents[2]
QUICK_CONTENDERS = ["nniray Random", "nniray TPE", "Optuna TPE"]


def _parse(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.hpo.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--contenders", nargs="*", help="names as in the table (default: all)")
    ap.add_argument("--problems", nargs="*", choices=list(PROBLEMS), help="default: all")
    ap.add_argument("--cap-s", type=float, default=30.0,
                    help="per-run cap on the optimizer's own CPU time (s); past it the rest is random (flagged †)")
    ap.add_argument("--timing-sizes", type=int, nargs="*", default=[100, 300, 1000])
    ap.add_argument("--timing-timeout", type=float, default=120.0)
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--quick", action="store_true", help="1 seed × 10 evals, 3 contenders, 2 problems, no timing")
    ap.add_argument("--results", default=None, help="JSON-lines file of run records (default under benchmarks/hpo/results)")
    ap.add_argument("--out", default=None, help="markdown output (default docs/benchmarks/hpo.md; --quick: none)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--timing-only", action="store_true", help="only the N-observation timings (merged into saved ones)")
    return ap.parse_args(argv)


def _run_timing(contender: str, n: int, timeout: float) -> float | str:
    cmd = [sys.executable, "-m", "benchmarks.hpo.runner", "--contender", contender, "--obs", str(n)]
    try:
        cp = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s (load+5 steps)"
    for line in cp.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])["median_s"]
    return "error: " + (cp.stderr.strip().splitlines() or ["?"])[-1][:80]


def main(argv=None) -> int:
    a = _parse(argv)
    if a.quick:
        a.seeds, a.evals = min(a.seeds, 1) if a.seeds != 8 else 1, 10
        a.contenders = a.contenders or QUICK_CONTENDERS
        a.problems = a.problems or ["branin", "mixed"]
        a.no_timing = True
    names = a.contenders or C.all_names()
    problems = a.problems or list(PROBLEMS)
    results = Path(a.results) if a.results else ROOT / "benchmarks/hpo/results" / (
        f"runs_{'quick' if a.quick else 'full'}_{a.seeds}x{a.evals}.jsonl")
    results.parent.mkdir(parents=True, exist_ok=True)
    out = a.out or (None if a.quick else str(ROOT / "docs/benchmarks/hpo.md"))
    t_start = time.time()
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        head = "?"

    # availability, checked on a space of the problem kinds used (a tuner that cannot do a
    # space type errors on that problem instead and is shown as "error" there).
    unavailable = {}
    for n in names:
        why = C.available(n)
        if why:
            unavailable[n] = why
    runnable = [n for n in names if n not in unavailable]
    print(f"contenders: {runnable}\nnot available: {unavailable}", flush=True)

    done = {}
    if results.exists():
        for line in results.read_text().splitlines():
            r = json.loads(line)
            done[(r["contender"], r["problem"], r["seed"], r["evals"])] = r
    jobs = [(c, p, s) for s in range(a.seeds) for p in problems for c in runnable
            if (c, p, s, a.evals) not in done]
    if not a.report_only and not a.timing_only and jobs:
        print(f"{len(jobs)} runs to do ({len(done)} already recorded in {results})", flush=True)
        import multiprocessing as mp
        with ProcessPoolExecutor(max_workers=a.workers, mp_context=mp.get_context("spawn")) as ex, \
                results.open("a") as fh:
            futs = {ex.submit(run_job, c, p, s, a.evals, a.cap_s): (c, p, s) for c, p, s in jobs}
            for i, f in enumerate(as_completed(futs)):
                r = f.result()
                r.pop("traceback", None) if not r.get("error") else None
                r["commit"] = head  # which version of the tuners produced this record
                fh.write(json.dumps(r) + "\n")
                fh.flush()
                done[(r["contender"], r["problem"], r["seed"], r["evals"])] = r
                tot = sum(r["suggest_s"])
                print(f"[{i + 1}/{len(jobs)}] {r['contender']:>18} {r['problem']:>18} seed {r['seed']}: "
                      f"best {min(r['values']) if r['values'] else float('nan'):.4g}  optimizer {tot:.1f}s"
                      + (f"  ERROR {r['error']}" if r["error"] else "")
                      + (f"  capped@{r['capped_at']}" if r["capped_at"] is not None else ""), flush=True)

    records = [r for (c, p, s, e), r in done.items()
               if c in runnable and p in problems and s < a.seeds and e == a.evals]
    agg = aggregate(records, runnable, problems)

    tpath = results.with_suffix(".timings.json")
    timings: dict = {}
    if tpath.exists():
        timings = {(c, n): v for c, n, v in json.loads(tpath.read_text())}
    if (not a.no_timing or a.timing_only) and not a.report_only:
        jobs_t = [(c, n) for n in a.timing_sizes for c in runnable]
        with ThreadPoolExecutor(max_workers=a.workers) as ex:
            futs = {ex.submit(_run_timing, c, n, a.timing_timeout): (c, n) for c, n in jobs_t}
            for f in as_completed(futs):
                timings[futs[f]] = f.result()
                print(f"timing {futs[f]}: {timings[futs[f]]}", flush=True)
                tpath.write_text(json.dumps([[c, n, v] for (c, n), v in timings.items()]))
    timings = {k: v for k, v in timings.items() if k[0] in runnable}

    cmd = "python -m benchmarks.hpo.run " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.report_only:  # show the command that produced the records, not the rebuild
        cmd = (f"python -m benchmarks.hpo.run --seeds {a.seeds} --evals {a.evals} --cap-s {a.cap_s:g}"
               f"  (runs resume from {results.relative_to(ROOT) if results.is_relative_to(ROOT) else results};"
               f" this table was rebuilt with --report-only)")
    meta = {"seeds": a.seeds, "evals": a.evals, "workers": a.workers,
            "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_min": None if a.report_only else (time.time() - t_start) / 60}
    md = markdown(agg, runnable, problems, timings, unavailable, C.SKIPPED, cmd.strip(), meta)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        png = Path(out).with_name("hpo_best_so_far.png")
        plot(agg, runnable, problems, str(png))
        md += f"\n![best-so-far regret per problem]({png.name})\n"
        Path(out).write_text(md)
        print(f"wrote {out} and {png}")
    else:
        print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
