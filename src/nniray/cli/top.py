"""``nniray top``: a refreshing view of running experiments and their trials (from the stores)."""
from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.live import Live

from nniray.storage import ExperimentStore

from . import locate
from .console import console, date, duration, table
from .errors import CliError


def render(ids: list[str], data: dict[str, dict]) -> Group:
    parts: list[Any] = []
    for exp_id in ids:
        e = data[exp_id]
        start = e.get("startTime")
        end = e.get("endTime") if e.get("status") in ("DONE", "STOPPED", "ERROR") else None
        parts.append(f"Id: {exp_id}    Status: {e.get('status')}    Port: {e.get('port') or 'N/A'}    "
                     f"Platform: {e.get('platform') or 'local'}    StartTime: {date(start)}    "
                     f"Duration: {duration((end or time.time()) - start) if start else 'N/A'}")
        rows = []
        try:
            store = ExperimentStore(e["logDir"], readonly=True)
            for t in store.list_trials():
                rows.append((t["trial_id"], date(t["start_time"]), date(t["end_time"]), t["status"]))
            store.close()
        except (KeyError, FileNotFoundError, OSError):
            rows.append(("(no store)", "", "", ""))
        parts.append(table(None, ("trialId", "startTime", "endTime", "status"), rows))
    return Group(*parts)


def top(args: Any) -> int:
    if args.time <= 0:
        raise CliError(f"--time must be a positive number of seconds, got {args.time}")
    con = console()
    n = 0
    try:
        with Live(console=con, auto_refresh=False, transient=False) as live:
            while True:
                data = locate.refreshed()
                ids = [locate.resolve(args.id)] if args.id else locate.running_ids(data)
                live.update(render(ids, data) if ids else "There is no experiment running...", refresh=True)
                n += 1
                if args.iterations is not None and n >= args.iterations:
                    return 0
                time.sleep(args.time)
    except KeyboardInterrupt:
        return 0
