"""A read-only session over an experiment directory, without a daemon or Ray: what a server
needs to show a stored experiment (the benchmarks and tests serve generated stores with it;
the daemon's own session is :class:`nniray.cli.daemon.Session`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nniray.cli import shapes
from nniray.storage import ExperimentStore

from .exceptions import HttpError


class StoreSession:
    mode = "view"

    def __init__(self, exp_dir: str | Path, exp_id: str | None = None) -> None:
        self.exp_dir = Path(exp_dir)
        self.store = ExperimentStore(self.exp_dir, readonly=True)
        self.exp_id = exp_id or self.exp_dir.name
        self.stopped = False

    def require_ready(self) -> None:
        return None

    def check_status(self) -> dict:
        return {"status": "VIEWED", "errors": list(self.store.get_meta("errors", []))}

    def profile(self) -> dict:
        return shapes.profile(self.store, self.exp_id, self.exp_dir)

    def daemon_info(self) -> dict:
        return {"experimentId": self.exp_id, "mode": self.mode, "phase": "ready", "error": None,
                "logDir": str(self.exp_dir)}

    def _readonly(self, *args: Any) -> None:
        raise HttpError(403, f"experiment {self.exp_id} is opened read-only")

    update = import_data = kill_trial = add_customized_trial = _readonly

    def request_stop(self) -> None:
        self.stopped = True
