"""``nniray trial ls|kill`` and ``nniray log trial``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nniray.storage import default_registry

from . import client, locate, shapes
from .console import console, date, dump_json, info, table
from .errors import CliError


def _final_value(t: dict) -> Any:
    finals = t.get("finalMetricData") or []
    return json.loads(json.loads(finals[-1]["data"])) if finals else None


def select(trials: list[dict], head: int | None, tail: int | None, mode: str) -> list[dict]:
    """``--head N``: the N best completed trials, best first; ``--tail N``: the N worst, worst
    first.  Best follows the experiment's optimize_mode (maximize: highest)."""
    if head is None and tail is None:
        return trials
    n = head if head is not None else tail
    if n <= 0:
        raise CliError(f"--{'head' if head is not None else 'tail'} must be a positive number, got {n}")
    scored = [(shapes.default_metric(_final_value(t)), t) for t in trials if t.get("finalMetricData")]
    scored = [(v, t) for v, t in scored if v is not None]
    best_first = sorted(scored, key=lambda vt: vt[0], reverse=(mode == "maximize"))
    chosen = best_first if head is not None else best_first[::-1]
    return [t for _, t in chosen[:n]]


def ls(args: Any) -> int:
    if args.head is not None and args.tail is not None:
        raise CliError("--head and --tail cannot be used together")
    exp_id = locate.resolve(args.id)
    store, d = locate.open_store(exp_id)
    trials = shapes.trial_jobs(store, d)
    mode = shapes.optimize_mode(store.get_meta("config") or {})
    trials = select(trials, args.head, args.tail, mode)
    if args.json:
        for t in trials:
            for key in ("startTime", "endTime"):
                if t.get(key) is not None:
                    t[key] = date(t[key], is_ms=True)
        dump_json(trials)
        return 0
    rows = []
    for t in trials:
        hp = json.loads(t["hyperParameters"][0]).get("parameters")
        v = _final_value(t)
        rows.append((t["trialJobId"], t["sequenceId"], t["status"], "" if v is None else json.dumps(v),
                     json.dumps(hp), date(t.get("startTime"), is_ms=True),
                     date(t.get("endTime"), is_ms=True) if t.get("endTime") else ""))
    console().print(table(f"Trials of experiment {exp_id} ({len(rows)}, optimize_mode {mode})",
                          ("trialJobId", "seq", "status", "final metric", "parameters", "startTime", "endTime"),
                          rows))
    return 0


def kill(args: Any) -> int:
    exp_id = locate.resolve(args.id, running_only=True)
    entry = default_registry().get(exp_id) or {}
    if not entry.get("port"):
        raise CliError(f"experiment {exp_id} was started from Python: it has no REST server to talk to")
    client.delete(int(entry["port"]), f"/trial-jobs/{args.trial_id}")
    info(f"Killed trial {args.trial_id} of experiment {exp_id}")
    return 0


def _tail(path: Path, n: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return []


def log_trial(args: Any) -> int:
    exp_id = locate.resolve(args.id)
    store, d = locate.open_store(exp_id)
    if args.trial_id is None:
        info("All of trial log info:")
        trials = store.list_trials()
        for t in trials:
            info(f"id:{t['trial_id']} path:{d / 'trials' / t['trial_id']}")
        if not trials:
            info("None")
        return 0
    t = store.get_trial(args.trial_id)
    if t is None:
        raise CliError(f"trial id {args.trial_id} not found in experiment {exp_id} (see `nniray trial ls {exp_id}`)")
    tdir = d / "trials" / args.trial_id
    info(f"id:{args.trial_id} path:{tdir}")
    for name in ("trial.log", "stderr"):
        lines = _tail(tdir / name, args.lines)
        print(f"----- {tdir / name} (last {args.lines} lines) -----")
        print("\n".join(lines) if lines else "(empty)")
    return 0
