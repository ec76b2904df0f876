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


# How much later than the recorded start a process may have started and still be the one that
# recorded it (the clock-tick resolution of /proc and the registry write).
_START_SLACK_S = 2.0


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc; None where unknown."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            ticks = int(f.read().rsplit(") ", 1)[1].split()[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _daemon_of(pid: int, exp_id: str | None) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return bool(exp_id) and b"nniray.cli.daemon" in argv and exp_id.encode() in argv


def owner_alive(info: dict) -> bool:
    """Whether the process recorded in a registry entry still lives *and is that process*: a
    pid reused by a later process (it started after the entry's start time) does not count,
    so a finished experiment never looks running because its old pid was recycled."""
    pid = info.get("pid")
    if not pid_alive(pid):
        return False
    if _daemon_of(int(pid), info.get("id")):
        return True  # an `nniray create/resume/view` daemon names its experiment on its command line
    started = info.get("startTime")
    if info.get("status") == "VIEWED" or not isinstance(started, (int, float)):
        return True  # a viewer records the experiment's old start time, not its own
    begun = process_start_time(int(pid))
    return begun is None or begun <= float(started) + _START_SLACK_S


def is_running(info: dict) -> bool:
    """True while the experiment's daemon (or Python driver) process lives and it was not stopped."""
    return info.get("status") not in ("STOPPED", None) and owner_alive(info)


def refreshed() -> dict[str, dict]:
    """The registry with dead processes marked STOPPED (as nnictl's ``update_experiment``)."""
    reg = default_registry()
    data = reg.all()
    for exp_id, info in data.items():
        if info.get("status") not in ("STOPPED", "DONE", "ERROR", None) and not owner_alive(info):
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
