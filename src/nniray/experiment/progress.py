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


def watch(experiment: Any, interval: float = 0.5) -> str:
    """Poll until the experiment reaches DONE/STOPPED/ERROR (or NO_MORE_TRIAL with nothing
    running), rendering a live table; returns the final status."""
    store = experiment._store
    mode = optimize_mode(store.get_meta("config") or {})
    console = Console()
    start = time.time()
    status = experiment.get_status()
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            status = experiment.get_status()
            counts = store.status_counts()
            live.update(summary_table(experiment.id, status, counts, best_so_far(store, mode), mode,
                                      time.time() - start))
            if status in TERMINAL:
                break
            time.sleep(interval)
    if status == "ERROR":
        for e in experiment.get_errors():
            console.print(f"[red]error:[/red] {e}")
    return status
