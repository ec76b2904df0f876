"""Which experiments exist on this machine and where (NNI's ``~/nni-experiments/.experiment``).

A small JSON file under ``$NNIRAY_HOME`` (default ``~/.nniray``), updated under a file lock,
so that ``nniray experiment list``, ``resume <id>`` and ``stop <id>`` find an experiment by id
wherever its working directory is (nnictl's id rules live in ``nniray.cli.locate``).
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def nniray_home() -> Path:
    return Path(os.environ.get("NNIRAY_HOME", Path.home() / ".nniray")).expanduser()


class ExperimentRegistry:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else nniray_home() / "experiments.json"

    @contextmanager
    def _locked(self) -> Iterator[dict]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() and self.path.stat().st_size else {}
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, indent=1))
                os.replace(tmp, self.path)

    def all(self) -> dict[str, dict]:
        with self._locked() as data:
            return dict(data)

    def get(self, exp_id: str) -> dict | None:
        return self.all().get(exp_id)

    def update(self, exp_id: str, **fields: Any) -> None:
        with self._locked() as data:
            data.setdefault(exp_id, {"id": exp_id}).update(fields)

    def remove(self, exp_id: str) -> None:
        with self._locked() as data:
            data.pop(exp_id, None)


def default_registry() -> ExperimentRegistry:
    return ExperimentRegistry()
