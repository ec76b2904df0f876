"""``<experiment dir>/log/controller-status.json``: the experiment's status and errors kept
outside SQLite, for when SQLite cannot take them (``database or disk is full``).  The
controller writes it when a store write fails and removes it when a later controller could
claim the store again; the CLI, REST and ``Experiment`` read it when no controller answers."""
from __future__ import annotations

import json
import time
from pathlib import Path

from nniray.runtime.status import ExperimentStatus

FILENAME = "controller-status.json"


def path(exp_dir: str | Path) -> Path:
    return Path(exp_dir) / "log" / FILENAME


def write(exp_dir: str | Path, reason: str, errors: list[str]) -> None:
    """May fail on a full disk too: the controller still answers the reason from memory."""
    try:
        path(exp_dir).write_text(json.dumps({"status": ExperimentStatus.ERROR.value, "errors": errors,
                                             "reason": reason, "time": time.time()}))
    except OSError:
        pass


def clear(exp_dir: str | Path) -> None:
    try:
        path(exp_dir).unlink()
    except FileNotFoundError:
        pass


def read(exp_dir: str | Path) -> dict | None:
    try:
        return json.loads(path(exp_dir).read_text())
    except (OSError, ValueError):
        return None
