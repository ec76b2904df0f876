"""Finding experiments: the registry, whether a daemon is alive, and nnictl's id rules.

"Running" here means what ``nnictl`` means: the experiment's manager (our daemon) is alive, so
an experiment that reached DONE but is still served counts as running until ``nniray stop``.
"""
from __future__ import annotations

import os
from pathlib import Path

from nniray.storage import ExperimentStore, default_registry

from .errors import CliError

DEFAULT_ROOT = "~/nni-experiments"


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that pid: not ours, treat as gone
        return False
    # A zombie (our own child that exited but was not reaped) is not alive.
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def is_running(info: dict) -> bool:
    """True while the experiment's daemon (or Python driver) process lives and it was not stopped."""
    return info.get("status") not in ("STOPPED", None) and pid_alive(info.get("pid"))


def refreshed() -> dict[str, dict]:
    """The registry with dead processes marked STOPPED (as nnictl's ``update_experiment``)."""
    reg = default_registry()
    data = reg.all()
    for exp_id, info in data.items():
        if info.get("status") not in ("STOPPED", "DONE", "ERROR", None) and not pid_alive(info.get("pid")):
            # The manager died without recording its end (killed, machine rebooted).
            reg.update(exp_id, status="STOPPED")
            info["status"] = "STOPPED"
    return data


def running_ids(data: dict[str, dict]) -> list[str]:
    return sorted(k for k, v in data.items() if is_running(v))


def resolve(exp_id: str | None, running_only: bool = False) -> str:
    """One experiment id: none → the only running experiment; an exact id; else the unique id
    that starts with the given prefix."""
    data = refreshed()
    running = running_ids(data)
    if exp_id is None:
        if len(running) == 1:
            return running[0]
        if not running:
            raise CliError("no experiment is running; give an experiment id (see `nniray experiment list --all`)")
        raise CliError(f"{len(running)} experiments are running ({', '.join(running)}); give an experiment id")
    pool = running if running_only else sorted(data)
    if exp_id in pool:
        return exp_id
    cands = [k for k in pool if k.startswith(exp_id)]
    if len(cands) == 1:
        return cands[0]
    if cands:
        raise CliError(f"id {exp_id!r} is ambiguous: it starts {', '.join(cands)}; give more of the id")
    if running_only and exp_id in data:
        raise CliError(f"experiment {exp_id} is not running (status {data[exp_id].get('status')}); "
                       f"`nniray resume {exp_id}` continues it")
    raise CliError(f"no experiment with id {exp_id!r} (see `nniray experiment list --all`)")


def resolve_for_stop(exp_id: str | None, port: int | None, all_: bool) -> list[str]:
    """nnictl's stop rules: --all; --port; no id → the only running one; ``abc*`` → every
    running id starting with abc; an exact id; a prefix of exactly one running id."""
    data = refreshed()
    running = running_ids(data)
    if all_:
        if not running:
            raise CliError("no experiment is running")
        return running
    if port is not None:
        on_port = [k for k in running if str(data[k].get("port")) == str(port)]
        if not on_port:
            raise CliError(f"no running experiment serves port {port}")
        if exp_id and exp_id != on_port[0]:
            raise CliError(f"experiment {exp_id} does not serve port {port} ({on_port[0]} does)")
        return on_port
    if exp_id is None:
        return [resolve(None)]
    if exp_id.endswith("*"):
        hits = [k for k in running if k.startswith(exp_id[:-1])]
        if not hits:
            raise CliError(f"no running experiment id matches {exp_id!r}")
        return hits
    return [resolve(exp_id, running_only=True)]


def experiment_dir(exp_id: str, given: str | None = None) -> Path:
    """The experiment's folder: ``--experiment_dir`` (the folder itself or its parent), the
    registry's logDir, or ``~/nni-experiments/<id>``."""
    if given:
        d = Path(given).expanduser().resolve()
        cands = [d, d / exp_id]
    else:
        info = default_registry().get(exp_id) or {}
        cands = [Path(info["logDir"])] if info.get("logDir") else []
        cands.append(Path(DEFAULT_ROOT).expanduser() / exp_id)
    for d in cands:
        if (d / ExperimentStore.FILENAME).exists():
            return d
    raise CliError(f"no experiment {exp_id!r} found (looked in {', '.join(str(c) for c in cands)}); "
                   f"see `nniray experiment list --all`, or give --experiment_dir")


def open_store(exp_id: str) -> tuple[ExperimentStore, Path]:
    d = experiment_dir(exp_id)
    return ExperimentStore(d, readonly=True), d
