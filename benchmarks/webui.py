"""The web UI at 100,000 trials, in a real headless Chromium, and live beside a running experiment.

    nice -n 10 python benchmarks/webui.py [--trials 100000] [--intermediates 100] [--live-trials 1000]
                                          [--repeat 3] [--write]

1. Fills an experiment store with ``--trials`` trials x ``--intermediates`` intermediate results
   each (plus a dict final), serves it with ``nniray view`` (read-only, a real daemon), and times
   in Chromium, from the action to the rendered DOM: the first page (overview; trials table),
   a sort, a status filter, a parameter filter, a search, a trial's detail (parameters and its
   curve), and each plot.  Reports the daemon's RSS after the run.
2. Live: ``nniray create`` runs ``--live-trials`` trivial command trials at concurrency 2, once
   with no page open and once with the trials page and the overview open; reports both wall times
   and how far behind the page was when the experiment ended.

Medians of ``--repeat`` runs.  ``--write`` puts the results in docs/benchmarks/webui.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "web"))
sys.path.insert(0, str(ROOT / "tests" / "cli"))

from ui_support import CHROMIUM, LAUNCH_ARGS, write_ui_experiment  # noqa: E402
from cli_helpers import Cli, free_port, rest  # noqa: E402

EXP_ID = "bench100k"
SPACE = {"lr": {"_type": "loguniform", "_value": [1e-5, 1e-1]}, "momentum": {"_type": "uniform", "_value": [0, 1]},
         "batch": {"_type": "choice", "_value": [16, 32, 64, 128]}, "opt": {"_type": "choice", "_value": ["sgd", "adam", "rmsprop"]},
         "layers": {"_type": "randint", "_value": [1, 8]}}
STATUSES = ["SUCCEEDED"] * 90 + ["FAILED"] * 4 + ["EARLY_STOPPED"] * 4 + ["USER_CANCELED"] * 2


# ------------------------------------------------------------------------------------ the store
def fill_store(exp_dir: Path, n_trials: int, n_inter: int, seed: int = 0) -> float:
    """A store like an experiment's after ``n_trials`` trials (written in bulk through the store's
    own connection, so its schema, triggers and indexes are the real ones).  Returns seconds."""
    from nniray.storage.sqlite_store import ExperimentStore

    t0 = time.perf_counter()
    exp_dir.mkdir(parents=True, exist_ok=True)
    store = ExperimentStore(exp_dir)
    rng = random.Random(seed)
    start = time.time() - n_trials * 2.0
    cfg = {"experimentName": "bench-100k", "searchSpace": SPACE, "trialConcurrency": 8, "maxTrialNumber": n_trials,
           "maxExperimentDuration": "30d", "trialCommand": "python3 trial.py", "trialCodeDirectory": ".",
           "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}},
           "trainingService": {"platform": "local"}}
    store.set_meta("config", cfg)
    store.set_meta("start_time", start)
    store.set_meta("end_time", time.time())
    store.set_meta("status", "DONE")
    store.set_meta("exec_duration", n_trials * 2.0 / 8)
    db = store._db
    batch = 2000
    for lo in range(0, n_trials, batch):
        trials, metrics = [], []
        for i in range(lo, min(lo + batch, n_trials)):
            p = {"lr": 10 ** rng.uniform(-5, -1), "momentum": rng.random(), "batch": rng.choice([16, 32, 64, 128]),
                 "opt": rng.choice(["sgd", "adam", "rmsprop"]), "layers": rng.randint(1, 8)}
            score = 0.9 - 0.05 * abs(5 + math.log10(p["lr"]) - 2) + (0.03 if p["opt"] == "adam" else 0) \
                + rng.gauss(0, 0.01)
            status = rng.choice(STATUSES)
            t_start = start + i * 2.0 / 8
            dur = rng.uniform(5, 60)
            tid = f"t{i:07d}"
            steps = n_inter if status == "SUCCEEDED" else rng.randint(1, n_inter)
            final = None if status in ("FAILED", "USER_CANCELED") else json.dumps({"default": score, "loss": 1 - score})
            trials.append((tid, i, str(i), json.dumps({"parameter_id": i, "parameter_source": "algorithm", "parameters": p}),
                           status, t_start, t_start, t_start + dur, final))
            for s in range(steps):
                metrics.append((tid, str(i), "PERIODICAL", s, json.dumps(score * (s + 1) / steps), t_start + s * dur / steps))
        db.execute("BEGIN")
        db.executemany("INSERT INTO trials(trial_id, sequence_id, parameter_id, hyper_params, status, submit_time, "
                       "start_time, end_time, final) VALUES (?,?,?,?,?,?,?,?,?)", trials)
        db.executemany("INSERT INTO metrics(trial_id, parameter_id, type, sequence, value, timestamp) "
                       "VALUES (?,?,?,?,?,?)", metrics)
        db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    store.close()
    return time.perf_counter() - t0


def fill(exp_dir: Path, n_trials: int, n_inter: int) -> float:
    """The store benchmark's generator (benchmarks/store.py) when it is there, else ours."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from store import generate
    except ImportError:
        return fill_store(exp_dir, n_trials, n_inter)
    t0 = time.perf_counter()
    exp_dir.mkdir(parents=True, exist_ok=True)
    generate(exp_dir, n_trials, n_inter)
    return time.perf_counter() - t0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def daemon_pid(cli: Cli, exp_id: str) -> int:
    return int(cli.registry()[exp_id]["pid"])


# ------------------------------------------------------------------------------------ browser
class Timer:
    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds * 1000)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def _loaded_mark(page) -> str:
    return page.get_attribute("#tr-table", "data-loaded") or ""


def _wait_table(page, prev: str, timeout: float = 60_000) -> None:
    page.wait_for_function("([p]) => { const t = document.querySelector('#tr-table'); return t && t.dataset.loaded"
                           " && t.dataset.loaded !== p && !t.classList.contains('loading'); }", arg=[prev], timeout=timeout)


def measure_ui(url: str, repeat: int, timer: Timer) -> dict:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    info = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        for r in range(repeat):
            ctx = browser.new_context(viewport={"width": 1440, "height": 900})
            page = ctx.new_page()
            # first page: the overview, complete with its top-trials table
            t = time.perf_counter()
            page.goto(url + "/#/overview")
            page.wait_for_selector("#ov-best-trial")
            page.wait_for_selector("#ov-top table tbody tr")
            timer.add("first page: overview", time.perf_counter() - t)
            # first page: the trials table
            t = time.perf_counter()
            page.goto(url + "/#/trials")
            page.wait_for_selector("#tr-table tbody tr[data-trial-id]")
            timer.add("first page: trials table", time.perf_counter() - t)
            info["total"] = page.text_content("#tr-total")
            # sort by the metric
            prev = _loaded_mark(page)
            t = time.perf_counter()
            page.click('#tr-table th[data-col="final"]')
            _wait_table(page, prev)
            timer.add("sort by metric", time.perf_counter() - t)
            prev = _loaded_mark(page)
            t = time.perf_counter()
            page.click('#tr-table th[data-col="param.lr"]')
            _wait_table(page, prev)
            timer.add("sort by a parameter", time.perf_counter() - t)
            # filters
            prev = _loaded_mark(page)
            t = time.perf_counter()
            page.click('#tr-status button[data-status="EARLY_STOPPED"]')
            _wait_table(page, prev)
            timer.add("filter by status", time.perf_counter() - t)
            prev = _loaded_mark(page)
            page.select_option("#tr-param-name", "opt")
            page.fill("#tr-param-value", "adam")
            t = time.perf_counter()
            page.click("#tr-param-add")
            _wait_table(page, prev)
            timer.add("filter by a parameter value", time.perf_counter() - t)
            prev = _loaded_mark(page)
            t = time.perf_counter()
            page.fill("#tr-search", "t0077")
            _wait_table(page, prev)
            timer.add("search (incl. 250 ms typing debounce)", time.perf_counter() - t)
            # a trial's detail: parameters, its 100-point curve
            page.goto(url + "/#/trials")
            page.wait_for_selector("#tr-table tbody tr[data-trial-id]")
            row = page.locator("#tr-table tbody tr[data-trial-id]").nth(3)
            tid = row.get_attribute("data-trial-id")
            t = time.perf_counter()
            row.locator('td[data-col="sequenceId"]').click()
            page.wait_for_selector("#tr-params tr")
            timer.add("trial detail: parameters", time.perf_counter() - t)
            page.wait_for_selector("#tr-curve .scatterlayer .trace")
            timer.add("trial detail: with its curve" + (" (cold: loads plotly.js)" if r == 0 else ""), time.perf_counter() - t)
            info["detail_trial"] = tid
            # each plot, navigated to from the trials page
            for plot in ("final", "parallel", "importance", "intermediate", "duration", "slice"):
                t = time.perf_counter()
                try:
                    page.goto(url + f"/#/plots/{plot}")
                    page.wait_for_selector(f'#pl-plot[data-ready="{plot}"]', timeout=120_000)
                except PlaywrightTimeout:  # on an overloaded machine: say so, go on
                    info.setdefault("timeouts", []).append(f"plot: {plot} (run {r + 1}) > 120 s")
                    continue
                timer.add(f"plot: {plot}", time.perf_counter() - t)
                info[f"note {plot}"] = page.text_content("#pl-note")
            ctx.close()
        browser.close()
    return info


def measure_static(url: str, timer: Timer, repeat: int) -> None:
    """Raw route latencies (no browser) for the same requests, to split server from browser time."""
    import urllib.request
    routes = {"GET /summary": "/summary", "GET /trials/page (sort=final)": "/trials/page?limit=50&sort=final&order=desc",
              "GET /trials/page (param filter)": '/trials/page?limit=50&param.opt=%22adam%22',
              "GET /trials/finals": "/trials/finals?maxPoints=5000",
              "GET /metrics/series": "/metrics/series?trials=all&maxPoints=200&maxTrials=200",
              "GET /analysis/importance": "/analysis/importance", "GET /analysis/slice": "/analysis/slice?param=lr"}
    for _ in range(repeat):
        for name, path in routes.items():
            t = time.perf_counter()
            with urllib.request.urlopen(url + "/api/v1/nni" + path, timeout=120) as r:
                r.read()
            timer.add(name, time.perf_counter() - t)


# ------------------------------------------------------------------------------------ live
def live_run(root: Path, n: int, with_page: bool) -> dict:
    cli = Cli(root / "home", root)
    cfg = write_ui_experiment(root / "proj", "live", max_trials=n, concurrency=2, sleep=0.0)
    port = free_port()
    out: dict = {}
    pw = browser = None
    try:
        t0 = time.perf_counter()
        r = cli("create", "--config", str(cfg), "--port", str(port))
        assert r.returncode == 0, r.stdout + r.stderr
        url = f"http://127.0.0.1:{port}"
        pages = []
        if with_page:
            from playwright.sync_api import sync_playwright
            pw = sync_playwright().start()
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
            for route in ("#/trials", "#/overview"):
                pg = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
                pg.goto(url + "/" + route)
                pages.append(pg)
        while True:
            code, st = rest(port, "GET", "/check-status")
            if code == 200 and st["status"] in ("DONE", "ERROR", "STOPPED"):
                break
            time.sleep(0.2)
        done_at = time.perf_counter()
        out["wall_s"] = done_at - t0
        code, summary = rest(port, "GET", "/summary")
        out["succeeded"] = summary["counts"]["SUCCEEDED"]
        if with_page:
            overview = pages[1]
            # how long after the end the open overview shows every trial (the feed's lag)
            overview.wait_for_function("n => +document.querySelector('#ov-total').textContent.replace(/,/g, '') >= n",
                                       arg=n, timeout=60_000)
            out["page_lag_s"] = time.perf_counter() - done_at
            trials = pages[0]
            trials.wait_for_function("n => /^[\\d,]+/.test(document.querySelector('#tr-total').textContent) && "
                                     "+document.querySelector('#tr-total').textContent.match(/^[\\d,]+/)[0].replace(/,/g, '') >= n",
                                     arg=n, timeout=60_000)
            out["table_lag_s"] = time.perf_counter() - done_at
            out["rss_mib"] = rss_mib(daemon_pid(cli, list(cli.registry())[0]))
    finally:
        if browser is not None:
            browser.close()
            pw.stop()
        cli.stop_all()
    return out


# ------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--intermediates", type=int, default=100)
    ap.add_argument("--live-trials", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--reuse-static", action="store_true", help="take the 100k results saved by an earlier run")
    ap.add_argument("--store-dir", help="reuse (or create) the filled store here instead of a temporary one")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="nniray-webui-bench-"))
    exp_dir = Path(args.store_dir) / EXP_ID if args.store_dir else tmp / "exps" / EXP_ID
    if (exp_dir / "experiment.db").exists():
        fill_s = None
    else:
        fill_s = fill(exp_dir, args.trials, args.intermediates)
        print(f"filled {args.trials} trials x {args.intermediates} intermediates in {fill_s:.0f} s", flush=True)
    db_mib = sum(f.stat().st_size for f in exp_dir.glob("experiment.db*")) / 2 ** 20

    # The 100k part's results are kept beside the store, so the live part can be run (or re-run
    # after a failure) alone with --reuse-static.
    saved = exp_dir.parent / "webui-results.json"
    timer = Timer()
    if args.reuse_static and saved.exists():
        data = json.loads(saved.read_text())
        timer.samples, info, rss = data["samples"], data["info"], data["rss"]
    else:
        cli = Cli(tmp / "home", tmp)
        port = free_port()
        r = cli("view", EXP_ID, "--port", str(port), "--experiment_dir", str(exp_dir))
        if r.returncode != 0:
            raise SystemExit(f"nniray view failed: {r.stdout}{r.stderr}")
        url = f"http://127.0.0.1:{port}"
        try:
            measure_static(url, timer, args.repeat)
            info = measure_ui(url, args.repeat, timer)
            rss = rss_mib(daemon_pid(cli, EXP_ID))
        finally:
            cli.stop_all()
        saved.write_text(json.dumps({"samples": timer.samples, "info": info, "rss": rss}))
    print(json.dumps(info, indent=1), flush=True)

    def write(live: dict) -> None:
        lines = [f"| {name} | {timer.median(name):.0f} | {min(v):.0f}–{max(v):.0f} |" for name, v in timer.samples.items()]
        report = render(args, fill_s, db_mib, lines, rss, info, live)
        print(report, flush=True)
        if args.write:
            (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
            (ROOT / "docs" / "benchmarks" / "webui.md").write_text(report)

    write({})
    if not args.skip_live:
        live = {}
        for key, folder, with_page in (("without page", "live-a", False), ("with page", "live-b", True)):
            try:
                live[key] = live_run(tmp / folder, args.live_trials, with_page=with_page)
            except Exception as e:  # a loaded machine's Ray start can time out: say so in the report
                live[key] = {"error": " ".join(str(e).split())[:300]}
        write(live)


def render(args, fill_s, db_mib, lines, rss, info, live) -> str:
    cmd = "nice -n 10 python benchmarks/webui.py --write" + (
        f" --trials {args.trials}" if args.trials != 100_000 else "") + (
        f" --live-trials {args.live_trials}" if args.live_trials != 1000 else "")
    out = [f"Store: {args.trials:,} trials x {args.intermediates} intermediate results ({db_mib:.0f} MiB SQLite"
           + (f", filled in {fill_s:.0f} s" if fill_s else "") + "), served read-only by `nniray view`.",
           "", f"Command: `{cmd}`", "",
           f"Machine: 2 cores shared with ~8 engineers' jobs; load average when the report was written: "
           f"{os.getloadavg()[0]:.0f} (1 min), {os.getloadavg()[2]:.0f} (15 min). Times are upper bounds.", "",
           "| measurement (ms, from the action to the rendered DOM in headless Chromium) | median | range |",
           "|---|---|---|", *lines, "", f"Server (daemon) RSS after the run: {rss:.0f} MiB.", ""]
    if info.get("timeouts"):
        out += ["Timed out (not in the table): " + "; ".join(info["timeouts"]) + ".", ""]
    notes = {k: v for k, v in info.items() if k.startswith("note ")}
    if notes:
        out += ["What each plot says about sampling:", ""] + [f"- {k[5:]}: {v}" for k, v in notes.items()] + [""]
    n = args.trials
    out += ["Compared with NNI 3.0 (its behaviour from the spec, `shared/spec/nni-rest-api.md`; NNI itself was not run "
            "here): its web UI polls every 10 s and re-reads `GET /trial-jobs` (every trial) each time; above 100 "
            f"trials it reads metrics with `metric-data-range` in groups of 20 sequence ids, i.e. {n // 20:,} requests "
            f"for {n:,} trials per full pass, plus `metric-data-latest`, and its table, sort and filter run in the "
            "browser over every trial. Its manager is reported to die near 40,000 trials. Here the browser asks for one "
            "page (≤ 500 rows), one bounded series or sample per plot, and then only what changed, over one "
            "server-sent-events stream looked at every 0.5 s (so new results show within ~1 s instead of up to 10 s).",
            ""]
    if live and any("error" in v for v in live.values()):
        out += [f"Live ({args.live_trials:,} trivial command trials): not measured in this run: "
                + "; ".join(f"{k}: {v['error']}" for k, v in live.items() if "error" in v), ""]
    elif live:
        a, b = live["without page"], live["with page"]
        slow = (b["wall_s"] / a["wall_s"] - 1) * 100
        out += [f"Live: {args.live_trials:,} trivial command trials, concurrency 2, `nniray create`.", "",
                "| run | wall time (s) | succeeded |", "|---|---|---|",
                f"| no page open | {a['wall_s']:.1f} | {a['succeeded']} |",
                f"| trials page + overview open | {b['wall_s']:.1f} | {b['succeeded']} |", "",
                f"With the pages open the experiment took {slow:+.1f} % time. When it ended, the open overview "
                f"showed every trial {b['page_lag_s']:.2f} s later and the trials table {b['table_lag_s']:.2f} s "
                f"later (the feed looks at the store every 0.5 s; the table re-reads its page at most every 1.5 s). "
                f"Daemon RSS with two pages open: {b['rss_mib']:.0f} MiB.", ""]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
