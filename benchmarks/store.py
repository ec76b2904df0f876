"""Store read benchmark: a generator fills an experiment store, then the read port is timed.

    nice -n 10 python benchmarks/store.py --trials 10000 100000 --intermediates 100 \
        --out docs/benchmarks/store.md

For each size: a page of 50 sorted by the final metric (target < 50 ms), one trial's metrics
(< 20 ms), counts by status (< 20 ms), other page shapes, NNI's metric-data-latest and
metric-data-range, a streaming export of every trial (time and peak RSS of a fresh process,
bounded memory), and ``GET /trial-jobs`` and ``GET /trials/page`` through the real REST server
(uvicorn in a subprocess; its peak RSS).  Times are the median of repeated calls on a warm
file cache.  ``generate()`` is importable (the web UI benchmark fills its store with it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from nniray.storage import ExperimentStore, OptimizeMode, SortOrder, TrialQuery

STATUSES = ["SUCCEEDED"] * 8 + ["FAILED", "USER_CANCELED", "EARLY_STOPPED"]
TARGETS_MS = {"page50_final_desc": 50.0, "trial_metrics": 20.0, "counts_by_status": 20.0}


def generate(exp_dir: str | Path, trials: int, intermediates: int = 100, seed: int = 0, running: int = 10,
             batch: int = 500) -> Path:
    """Fill ``exp_dir`` with ``trials`` trials of ``intermediates`` PERIODICAL results each
    (dict finals with a default and two more keys; the last ``running`` trials RUNNING with no
    final) through the store's schema (its triggers and generated columns do their work)."""
    rng = random.Random(seed)
    store = ExperimentStore(exp_dir)
    store.set_meta("config", {"experimentName": f"bench-{trials}", "trialConcurrency": 8, "maxTrialNumber": trials,
                              "searchSpace": {"lr": {"_type": "loguniform", "_value": [1e-5, 1e-1]},
                                              "layers": {"_type": "choice", "_value": [1, 2, 3, 4]},
                                              "opt": {"_type": "choice", "_value": ["sgd", "adam", "rmsprop"]}},
                              "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}})
    t0 = 1_700_000_000.0
    store.set_meta("start_time", t0)
    db = store._db  # the generator writes in big transactions, as a batched writer would
    for lo in range(0, trials, batch):
        trows, mrows = [], []
        for i in range(lo, min(lo + batch, trials)):
            tid = f"t{i:07d}"
            params = {"lr": 10 ** rng.uniform(-5, -1), "layers": rng.choice([1, 2, 3, 4]),
                      "opt": rng.choice(["sgd", "adam", "rmsprop"])}
            start = t0 + i * 0.5
            is_running = i >= trials - running
            acc = rng.random()
            final = None if is_running else json.dumps({"default": acc, "loss": 1 - acc, "f1": acc * 0.9})
            status = "RUNNING" if is_running else rng.choice(STATUSES)
            trows.append((tid, i, str(i), json.dumps({"parameter_id": i, "parameter_source": "algorithm",
                                                       "parameters": params}),
                          status, start, start, None if is_running else start + rng.uniform(5, 500), final))
            for k in range(intermediates):
                mrows.append((tid, str(i), "PERIODICAL", k, json.dumps(acc * (k + 1) / intermediates), start + k))
            if final is not None:
                mrows.append((tid, str(i), "FINAL", 0, final, start + intermediates))
        with store.transaction():
            db.executemany("INSERT INTO trials(trial_id, sequence_id, parameter_id, hyper_params, status, submit_time, "
                           "start_time, end_time, final) VALUES(?,?,?,?,?,?,?,?,?)", trows)
            db.executemany("INSERT INTO metrics(trial_id, parameter_id, type, sequence, value, timestamp) "
                           "VALUES(?,?,?,?,?,?)", mrows)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    store.close()
    return Path(exp_dir)


def median_ms(fn: Callable[[], Any], repeat: int = 15) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


EXPORT = r"""
import json, resource, sys, time
from nniray.cli import shapes
from nniray.storage import ExperimentStore
store = ExperimentStore(sys.argv[1], readonly=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter(); n = 0; size = 0
with open("/dev/null", "w") as out:
    for info in shapes.iter_trial_jobs(store, sys.argv[1]):
        line = json.dumps(info); out.write(line); n += 1; size += len(line)
print(json.dumps({"n": n, "bytes": size, "s": time.perf_counter() - t, "rss_before_kib": before,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

SERVE = r"""
import sys, time
from nniray.web.server import RestServer
from nniray.web.session import StoreSession
srv = RestServer(StoreSession(sys.argv[1], exp_id="bench"), 0)
srv.start()
print(srv.port, flush=True)
sys.stdin.read()
srv.close()
"""


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def fetch(url: str) -> int:
    with urllib.request.urlopen(url, timeout=600) as r:
        n = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                return n
            n += len(chunk)


def measure(exp_dir: Path, trials: int) -> dict:
    store = ExperimentStore(exp_dir, readonly=True)
    rng = random.Random(1)
    ids = [f"t{rng.randrange(trials):07d}" for _ in range(64)]
    it = iter(ids * 10)
    out: dict[str, Any] = {"trials": store.count(),
                           "metrics": store._all("SELECT COUNT(*) FROM metrics")[0][0],
                           "db_mib": round(sum(p.stat().st_size for p in exp_dir.glob("experiment.db*")) / 2 ** 20)}
    q = {
        "page50_final_desc": lambda: store.trials_page(TrialQuery(limit=50, sort="final", order=SortOrder.DESC)),
        "page50_final_asc": lambda: store.trials_page(TrialQuery(limit=50, sort="final", order=SortOrder.ASC)),
        "page50_final_desc_succeeded": lambda: store.trials_page(TrialQuery(limit=50, sort="final", order="desc",
                                                                            statuses=("SUCCEEDED",))),
        "page50_final_desc_middle": lambda: store.trials_page(TrialQuery(offset=trials // 2, limit=50, sort="final",
                                                                         order="desc")),
        "page50_sequence": lambda: store.trials_page(TrialQuery(limit=50)),
        "page50_param_lr": lambda: store.trials_page(TrialQuery(limit=50, sort="param.lr", order="desc")),
        "page50_final_key_loss": lambda: store.trials_page(TrialQuery(limit=50, sort="final.loss")),
        "page50_filter_param_opt": lambda: store.trials_page(TrialQuery(limit=50, params={"opt": "adam"})),
        "page50_search_id": lambda: store.trials_page(TrialQuery(limit=50, search="12345")),
        "trial_metrics": lambda: store.trial_metrics(next(it)),
        "trial_row": lambda: store.trial(next(it)),
        "counts_by_status": store.counts_by_status,
        "best_trial": lambda: store.best_trial(OptimizeMode.MAXIMIZE),
        "metric_data_range_20": lambda: store.metrics_in_sequence_range(trials // 2, trials // 2 + 19),
        "finals_5000": lambda: store.finals(5000),
        "series_200x200": lambda: store.metric_series(ids[:50] * 4, 200),
    }
    for name, fn in q.items():
        out[name] = round(median_ms(fn, repeat=15), 2)
    out["latest_metrics_all"] = round(median_ms(store.latest_metrics, repeat=3), 1)
    store.close()

    r = subprocess.run([sys.executable, "-c", EXPORT, str(exp_dir)], capture_output=True, text=True, check=True)
    out["export"] = json.loads(r.stdout)

    srv = subprocess.Popen([sys.executable, "-c", SERVE, str(exp_dir)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    try:
        port = int(srv.stdout.readline())
        base = f"http://127.0.0.1:{port}/api/v1/nni"
        fetch(base + "/version")
        rss0 = vm_hwm_kib(srv.pid)
        t = time.perf_counter()
        size = fetch(base + "/trial-jobs")
        out["rest_trial_jobs"] = {"s": round(time.perf_counter() - t, 2), "mib": round(size / 2 ** 20, 1),
                                  "server_peak_rss_mib": round(vm_hwm_kib(srv.pid) / 1024),
                                  "server_rss_before_mib": round(rss0 / 1024)}
        out["rest_page50_final_desc"] = round(median_ms(
            lambda: fetch(base + "/trials/page?sort=final&order=desc&limit=50"), repeat=15), 2)
        out["rest_trial_metrics"] = round(median_ms(lambda: fetch(base + f"/trials/{next(it)}/metrics"), repeat=15), 2)
        out["rest_summary"] = round(median_ms(lambda: fetch(base + "/summary"), repeat=15), 2)
    finally:
        srv.stdin.close()
        srv.wait(timeout=30)
    return out


def report(results: list[dict], cmd: str, intermediates: int) -> str:
    lines = ["# Store read benchmark", "",
             "Generated by `benchmarks/store.py` (a generator fills an experiment store, then the "
             "`TrialStore` read port and the REST server are timed). Command:", "",
             f"    {cmd}", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with other "
             f"work (run under `nice -n 10`); Python {platform.python_version()}, SQLite "
             f"{__import__('sqlite3').sqlite_version}. Times: median of 15 calls (ms) on a warm file cache.",
             f"Each store: {intermediates} intermediate results per trial, dict finals, 10 trials RUNNING.", ""]
    head = "| measure | target | " + " | ".join(f"{r['trials']:,} trials" for r in results) + " |"
    lines += [head, "|---|---|" + "---|" * len(results)]
    keys = [k for k, v in results[0].items() if isinstance(v, (int, float)) and k not in ("trials",)]
    for k in keys:
        tgt = TARGETS_MS.get(k)
        cells = []
        for r in results:
            v = r[k]
            mark = "" if tgt is None else (" ✓" if v < tgt else " ✗")
            cells.append(f"{v:,}{mark}")
        lines.append(f"| {k} | {'' if tgt is None else f'< {tgt:g} ms'} | " + " | ".join(cells) + " |")
    for r in results:
        e, t = r["export"], r["rest_trial_jobs"]
        lines += ["", f"**{r['trials']:,} trials** ({r['metrics']:,} metric rows, {r['db_mib']} MiB file): "
                      f"streaming export of every trial as TrialJobInfo: {e['n']:,} trials, {e['bytes'] / 2 ** 20:.1f} MiB "
                      f"of JSON in {e['s']:.1f} s; process RSS {e['rss_before_kib'] / 1024:.0f} MiB before, peak "
                      f"{e['peak_rss_kib'] / 1024:.0f} MiB (bounded: batches of 1,000 trials). `GET /trial-jobs` "
                      f"through the REST server (streamed): {t['mib']} MiB in {t['s']} s; server RSS "
                      f"{t['server_rss_before_mib']} MiB before, peak {t['server_peak_rss_mib']} MiB."]
    lines += ["", "`page50_*`: `TrialStore.trials_page` (total count included). `page50_final_*` and the time "
              "sorts walk an index ending in the sequence id (ids from the index, then 50 rows by key); "
              "`param.*`, `final.<key>` and parameter filters walk the `trial_values` index; the id search is "
              "a LIKE scan of the trial ids. `rest_*`: the same through HTTP (uvicorn, JSON encoding "
              "included). `latest_metrics_all`: NNI's metric-data-latest (one row per trial, read by a MAX(id) "
              "index lookup per trial; no per-metric trigger keeps it, to keep metric writes cheap). "
              "`metric_data_range_20`: the range NNI's UI fetches (20 sequence ids).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--intermediates", type=int, default=100)
    p.add_argument("--dir", help="where to build the stores (default: a temp folder, removed after)")
    p.add_argument("--keep", action="store_true", help="keep the generated stores")
    p.add_argument("--out", help="write the markdown report here")
    args = p.parse_args(argv)
    root = Path(args.dir or tempfile.mkdtemp(prefix="nniray-store-bench-"))
    results = []
    try:
        for n in args.trials:
            d = root / f"exp{n}"
            if not (d / ExperimentStore.FILENAME).exists():
                t = time.perf_counter()
                generate(d, n, args.intermediates)
                print(f"generated {n} trials in {time.perf_counter() - t:.0f} s", flush=True)
            r = measure(d, n)
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    cmd = "nice -n 10 python benchmarks/store.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(results, cmd, args.intermediates)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
