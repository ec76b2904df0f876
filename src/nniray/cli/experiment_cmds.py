"""``nniray experiment show|status|list|delete|export|import`` and ``webui url``.

All but ``import`` read the store and the registry directly (no daemon, no Ray), so they
work on stopped experiments.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

from nniray.storage import ExperimentStore, default_registry

from . import client, locate, shapes
from .console import console, date, dump_json, info, table, warning
from .errors import CliError, read_json_file

LIVE = ("INITIALIZED", "RUNNING", "NO_MORE_TRIAL", "STOPPING")


def _status(exp_id: str, store: ExperimentStore) -> str:
    """The store's status, except that an experiment nobody runs any more is STOPPED (its
    process died before it could record the end)."""
    status = store.get_meta("status", "UNKNOWN")
    entry = locate.refreshed().get(exp_id) or {}
    if status in LIVE and not locate.is_running(entry):
        return "STOPPED"
    if entry.get("status") == "VIEWED" and locate.is_running(entry):
        return "VIEWED"
    return status


def show(args: Any) -> int:
    exp_id = locate.resolve(args.id)
    store, d = locate.open_store(exp_id)
    prof = shapes.profile(store, exp_id, d)
    prof["status"] = _status(exp_id, store)
    for key in ("startTime", "endTime"):
        if prof.get(key) is not None:
            prof[key] = date(prof[key], is_ms=True)
    dump_json(prof)
    return 0


def status(args: Any) -> int:
    exp_id = locate.resolve(args.id)
    store, _ = locate.open_store(exp_id)
    dump_json({"status": _status(exp_id, store), "errors": list(store.get_meta("errors", []))})
    return 0


def list_(args: Any) -> int:
    data = locate.refreshed()
    ids = sorted(data) if args.all else locate.running_ids(data)
    if not data:
        raise CliError("no experiments found (start one with `nniray create --config FILE`)")
    if not ids:
        warning("There is no experiment running...  `nniray experiment list --all` lists all experiments.")
        return 0
    rows = []
    for k in ids:
        v = data[k]
        rows.append((k, v.get("experimentName") or "N/A", v.get("status"), v.get("port") or "N/A",
                     v.get("platform") or "local", date(v.get("startTime")), date(v.get("endTime")),
                     v.get("logDir") or ""))
    console().print(table("Experiment information",
                          ("Id", "Name", "Status", "Port", "Platform", "StartTime", "EndTime", "LogDir"), rows))
    return 0


def delete(args: Any) -> int:
    data = locate.refreshed()
    if args.all:
        ids = sorted(data)
        if not ids:
            raise CliError("no experiments found")
    else:
        if args.id is None:
            raise CliError("give the id of the experiment to delete (or --all)")
        ids = [locate.resolve(args.id)]
    running = [k for k in ids if locate.is_running(data[k])]
    if running and not args.all:
        raise CliError(f"experiment {running[0]} is running; stop it first (`nniray stop {running[0]}`)")
    ids = [k for k in ids if k not in running]
    for k in running:
        warning(f"experiment {k} is running: not deleted")
    if not ids:
        return 0
    if not args.yes:
        try:
            answer = input(f"INFO: This deletes experiment {' '.join(ids)} and its data; it cannot be undone. "
                           f"Continue? [y/N]: ")
        except EOFError:
            raise CliError("confirmation needed: run in a terminal, or pass --yes") from None
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    for k in ids:
        d = Path(data[k].get("logDir") or "")
        if data[k].get("logDir") and (d / ExperimentStore.FILENAME).exists():
            info(f"removing folder {d}")
            shutil.rmtree(d)
        info(f"removing metadata of experiment {k}")
        default_registry().remove(k)
    info("Done.")
    return 0


# ------------------------------------------------------------------------------------- export
def export(args: Any) -> int:
    exp_id = locate.resolve(args.id)
    store, _ = locate.open_store(exp_id)
    records = shapes.export_records(store, value_as_text=False)
    if args.intermediate:
        inter: dict[str, list] = {}
        for m in store.metrics(mtype="PERIODICAL"):
            inter.setdefault(m["trial_id"], []).append(m["value"])
        for r in records:
            r["intermediate"] = inter.get(r["trialJobId"], [])
    path = Path(args.filename)
    if args.type == "json":
        path.write_text(json.dumps(records, indent=2))
    else:
        if not records:
            raise CliError(f"experiment {exp_id} has no trial with a final result yet; nothing to export")
        rows, columns = [], []
        for r in records:
            row: dict[str, Any] = {}
            if args.intermediate:
                row["intermediate"] = json.dumps(r["intermediate"])
            row.update(r["parameter"] if isinstance(r["parameter"], dict) else {"parameter": r["parameter"]})
            v = r["value"]
            row.update(v if isinstance(v, dict) else {"reward": v})
            row["trialJobId"] = r["trialJobId"]
            for c in row:
                if c not in columns:
                    columns.append(c)
            rows.append(row)
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            for row in rows:
                w.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in row.items()})
    info(f"Exported {len(records)} trials of experiment {exp_id} to {path}")
    return 0


# ------------------------------------------------------------------------------------- import
def import_(args: Any) -> int:
    path = Path(args.filename)
    raw = read_json_file(args.filename)
    try:
        data = shapes.check_import_data(raw, str(path))
    except ValueError as e:
        raise CliError(str(e)) from None
    exp_id = locate.resolve(args.id, running_only=True)
    entry = default_registry().get(exp_id) or {}
    store, _ = locate.open_store(exp_id)
    from nniray.search_space import SearchSpaceError, check_import_records
    try:  # checked here too, so the message names the file before anything is sent
        check_import_records(store.get_meta("search_space") or {}, data, str(path))
    except SearchSpaceError as e:
        raise CliError(str(e)) from None
    port = _port(exp_id, entry)
    client.post(port, "/experiment/import-data", data)
    info(f"Imported {len(data)} trial results into experiment {exp_id}")
    return 0


def _port(exp_id: str, entry: dict) -> int:
    if not entry.get("port"):
        raise CliError(f"experiment {exp_id} was started from Python, not by `nniray create`: it has no REST "
                       f"server to talk to")
    return int(entry["port"])


def webui_url(args: Any) -> int:
    exp_id = locate.resolve(args.id, running_only=True)
    entry = default_registry().get(exp_id) or {}
    info(f"Web UI url: {client.base_url(_port(exp_id, entry))}")
    return 0
