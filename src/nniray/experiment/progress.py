"""The terminal view of a running experiment: trials done/running/failed and the best metric."""
from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from nniray.utils import MetricError, extract_scalar_reward

TERMINAL = ("DONE", "STOPPED", "ERROR")


def best_so_far(store: Any, mode: str) -> float | None:
    best = None
    for d in store.completed_results():
        try:
            v = extract_scalar_reward(d["value"])
        except MetricError:
            continue
        if best is None or (v > best if mode == "maximize" else v < best):
            best = v
    return best


def optimize_mode(config: dict) -> str:
    for kind in ("tuner", "advisor", "assessor"):
        args = (config.get(kind) or {}).get("classArgs") or {}
        if "optimize_mode" in args:
            return str(args["optimize_mode"]).lower()
    return "maximize"


def summary_table(exp_id: str, status: str, counts: dict, best: float | None, mode: str, elapsed: float) -> Table:
    t = Table(title=f"nniray experiment {exp_id}", show_header=True, header_style="bold")
    for col in ("status", "done", "running", "failed", "early stopped", f"best ({mode})", "elapsed"):
        t.add_column(col)
    done = counts.get("SUCCEEDED", 0)
    failed = counts.get("FAILED", 0) + counts.get("SYS_CANCELED", 0) + counts.get("USER_CANCELED", 0)
    t.add_row(status, str(done), str(counts.get("RUNNING", 0) + counts.get("WAITING", 0)), str(failed),
              str(counts.get("EARLY_STOPPED", 0)), "-" if best is None else f"{best:.6g}", f"{elapsed:.0f}s")
    return t


def _live_ok(console: Console) -> bool:
    """A redrawn table needs a terminal, or Jupyter with ipywidgets; anything else (a pipe, a
    log file, CI, Jupyter without ipywidgets) gets plain lines, one per change."""
    if console.is_jupyter:
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return False
        return True
    return console.is_terminal


def plain_line(status: str, counts: dict, best: float | None, mode: str, elapsed: float) -> str:
    done = counts.get("SUCCEEDED", 0)
    failed = counts.get("FAILED", 0) + counts.get("SYS_CANCELED", 0) + counts.get("USER_CANCELED", 0)
    running = counts.get("RUNNING", 0) + counts.get("WAITING", 0)
    best_s = "-" if best is None else f"{best:.6g}"
    return (f"[{elapsed:5.0f}s] {status}: {done} done, {running} running, {failed} failed, "
            f"{counts.get('EARLY_STOPPED', 0)} early stopped, best ({mode}) {best_s}")


def failure_hint(store: Any, exp_dir: Any) -> str | None:
    """When trials failed and none succeeded: the first failure's reason and where its log is
    (otherwise the view says only "failed 8")."""
    counts = store.status_counts()
    if counts.get("SUCCEEDED", 0) or not counts.get("FAILED", 0):
        return None
    failed = sorted(store.list_trials("FAILED"), key=lambda t: t.get("sequence_id") or 0)
    if not failed:
        return None
    t = failed[0]
    tid = t.get("trial_id") or t.get("id")
    reason = (t.get("message") or "no message recorded").strip()
    where = ""
    if exp_dir is not None and tid:
        from pathlib import Path
        tdir = Path(exp_dir) / "trials" / str(tid)
        where = f"; its log: {tdir / 'trial.log'} (stderr: {tdir / 'stderr'})"
    return f"every trial so far failed; the first ({tid}): {reason}{where}"


def _say(console: Console, line: str) -> None:
    # Plain text straight to the stream (in Jupyter: the cell's output), no rich rendering.
    console.file.write(line + "\n")
    console.file.flush()


def watch(experiment: Any, interval: float = 0.5, console: Console | None = None) -> str:
    """Poll until the experiment reaches DONE/STOPPED/ERROR (or NO_MORE_TRIAL with nothing
    running), rendering a live table (plain lines without a terminal); returns the final status."""
    store = experiment._store
    mode = optimize_mode(store.get_meta("config") or {})
    console = console or Console()
    start = time.time()
    status = experiment.get_status()
    exp_dir = getattr(experiment, "_exp_dir", None)
    if _live_ok(console):
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while True:
                status = experiment.get_status()
                counts = store.status_counts()
                live.update(summary_table(experiment.id, status, counts, best_so_far(store, mode), mode,
                                          time.time() - start))
                if status in TERMINAL:
                    break
                time.sleep(interval)
    else:
        last = None
        while True:
            status = experiment.get_status()
            counts = store.status_counts()
            best = best_so_far(store, mode)
            key = (status, tuple(sorted(counts.items())), best)
            if key != last:  # one whole line per change: nothing to collide in a pipe or a log
                _say(console, plain_line(status, counts, best, mode, time.time() - start))
                last = key
            if status in TERMINAL:
                break
            time.sleep(interval)
    hint = failure_hint(store, exp_dir)
    if hint:
        if _live_ok(console):
            console.print(f"[red]{hint}[/red]", highlight=False, soft_wrap=True)
        else:
            _say(console, hint)
    if status == "ERROR":
        for e in experiment.get_errors():
            console.print(f"[red]error:[/red] {e}")
    return status
