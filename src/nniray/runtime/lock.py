"""One process runs an experiment at a time: ``<experiment dir>/.nniray.lock``.

The driver that starts or resumes an experiment holds an exclusive ``flock`` on this file for
as long as it runs it; the kernel drops the lock when that process ends, however it ends (a
SIGKILL included), so a stale lock never blocks a later resume.  The file names the holder
(pid, host, time) so that a refused second ``resume`` can say who runs it.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from nniray.errors import ExperimentRunningError

FILENAME = ".nniray.lock"


class ExperimentLock:
    def __init__(self, exp_dir: str | Path, experiment_id: str) -> None:
        self.path = Path(exp_dir) / FILENAME
        self.experiment_id = experiment_id
        self._fd: int | None = None

    def acquire(self, **info: object) -> None:
        """Take the lock or raise :class:`ExperimentRunningError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise ExperimentRunningError(
                f"experiment {self.experiment_id} is already running: {_describe(holder)}; stop it first "
                f"(`nniray stop {self.experiment_id}`) or connect to it") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                                 **info}).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> dict:
        """Who holds the lock now ({} if nobody says)."""
        try:
            with open(self.path) as f:
                return json.loads(f.read() or "{}")
        except (OSError, ValueError):
            return {}


def _read(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 65536).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process holds its lock"
    parts = [f"process {holder.get('pid')} on {holder.get('host')}"]
    if holder.get("port"):
        parts.append(f"serving http://127.0.0.1:{holder['port']}")
    if holder.get("since"):
        parts.append("since " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["since"]))))
    return ", ".join(parts)
