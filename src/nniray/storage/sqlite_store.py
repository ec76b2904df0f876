"""The experiment's embedded store: one SQLite file in the experiment directory.

The controller writes here *before* it acts (a trial row before the trial is dispatched, a
metric row before the tuner hears of it), so any process may die and resume reads back
exactly what was reported.  WAL mode lets the CLI and ``view`` read while the controller
writes.  Metrics are unique per (trial, type, sequence): a report re-sent after a
controller restart is recorded once.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    sequence_id INTEGER NOT NULL UNIQUE,
    parameter_id TEXT,
    hyper_params TEXT NOT NULL,          -- JSON {parameter_id, parameter_source, parameters}
    status TEXT NOT NULL,
    submit_time REAL NOT NULL,
    start_time REAL,
    end_time REAL,
    message TEXT,
    final TEXT,                          -- JSON of the final metric, once reported
    attempt INTEGER NOT NULL DEFAULT 0,
    node TEXT,
    customized INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS trials_status ON trials(status);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id TEXT NOT NULL,
    parameter_id TEXT,
    type TEXT NOT NULL,                  -- PERIODICAL | FINAL
    sequence INTEGER NOT NULL,
    value TEXT NOT NULL,                 -- JSON
    timestamp REAL NOT NULL,
    UNIQUE(trial_id, type, sequence)
);
CREATE INDEX IF NOT EXISTS metrics_trial ON metrics(trial_id);
"""

TRIAL_FIELDS = ("trial_id", "sequence_id", "parameter_id", "hyper_params", "status", "submit_time",
                "start_time", "end_time", "message", "final", "attempt", "node", "customized")
FINAL_STATUSES = ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED")


class FencedError(RuntimeError):
    """Another controller took over this experiment's store; this one must stop writing."""


class ExperimentStore:
    """Typed access to one experiment's SQLite file.

    A controller calls :meth:`claim` when it starts: from then on every write first checks,
    inside the same write transaction, that the store's owner token is still its own.  A stale
    controller (a process of a cluster that is dying, or a duplicate after a restart) gets
    :class:`FencedError` instead of corrupting the experiment.
    """

    FILENAME = "experiment.db"

    def __init__(self, exp_dir: str | Path, readonly: bool = False) -> None:
        self.path = Path(exp_dir) / self.FILENAME
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no experiment store at {self.path}")
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash (our failure model), and
            # is an order of magnitude cheaper than FULL.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        self._token: str | None = None

    def claim(self) -> str:
        """Become the only writer of this store (fencing token)."""
        import uuid
        token = uuid.uuid4().hex
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO meta(key, value) VALUES('owner', ?) ON CONFLICT(key) DO UPDATE "
                             "SET value=excluded.value", (json.dumps(token),))
            self._db.execute("COMMIT")
            self._token = token
        return token

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit (nesting joins the outer transaction)."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
                if self._token is not None:
                    row = self._db.execute("SELECT value FROM meta WHERE key='owner'").fetchone()
                    if row is None or json.loads(row[0]) != self._token:
                        self._db.execute("ROLLBACK")
                        raise FencedError(f"{self.path}: another controller owns this experiment now")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            else:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("COMMIT")

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            if self._token is not None and self._depth == 0 and not sql.lstrip().upper().startswith("SELECT"):
                with self.transaction():  # a lone write is fenced too
                    return self._db.execute(sql, args)
            return self._db.execute(sql, args)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- meta ------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self._exec("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                   (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._exec("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def all_meta(self) -> dict:
        return {r[0]: json.loads(r[1]) for r in self._exec("SELECT key, value FROM meta").fetchall()}

    # -- trials ----------------------------------------------------------------------------------
    def add_trial(self, trial_id: str, sequence_id: int, parameter_id: Any, hyper_params: dict,
                  status: str = "WAITING", customized: bool = False, attempt: int = 0) -> None:
        self._exec("INSERT INTO trials(trial_id, sequence_id, parameter_id, hyper_params, status, submit_time, "
                   "customized, attempt) VALUES(?,?,?,?,?,?,?,?)",
                   (trial_id, sequence_id, None if parameter_id is None else str(parameter_id),
                    json.dumps(hyper_params), status, time.time(), int(customized), attempt))

    def update_trial(self, trial_id: str, **fields: Any) -> None:
        bad = set(fields) - set(TRIAL_FIELDS)
        if bad:
            raise KeyError(f"unknown trial fields {bad}")
        if "final" in fields and fields["final"] is not None:
            fields["final"] = json.dumps(fields["final"])
        sets = ", ".join(f"{k}=?" for k in fields)
        self._exec(f"UPDATE trials SET {sets} WHERE trial_id=?", (*fields.values(), trial_id))

    def get_trial(self, trial_id: str) -> dict | None:
        row = self._exec("SELECT * FROM trials WHERE trial_id=?", (trial_id,)).fetchone()
        return None if row is None else self._trial_dict(row)

    def list_trials(self, status: str | tuple | None = None) -> list[dict]:
        if status is None:
            rows = self._exec("SELECT * FROM trials ORDER BY sequence_id").fetchall()
        else:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            q = ",".join("?" * len(statuses))
            rows = self._exec(f"SELECT * FROM trials WHERE status IN ({q}) ORDER BY sequence_id", statuses).fetchall()
        return [self._trial_dict(r) for r in rows]

    def count_trials(self) -> int:
        return self._exec("SELECT COUNT(*) FROM trials").fetchone()[0]

    def status_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._exec("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall()}

    def max_sequence_id(self) -> int:
        row = self._exec("SELECT MAX(sequence_id) FROM trials").fetchone()
        return -1 if row[0] is None else int(row[0])

    @staticmethod
    def _trial_dict(row: sqlite3.Row) -> dict:
        d = dict(row)
        d["hyper_params"] = json.loads(d["hyper_params"])
        d["final"] = None if d["final"] is None else json.loads(d["final"])
        d["customized"] = bool(d["customized"])
        return d

    # -- metrics ---------------------------------------------------------------------------------
    def add_metric(self, trial_id: str, parameter_id: Any, mtype: str, sequence: int, value: Any,
                   timestamp: float | None = None) -> bool:
        """Record a metric; False if this (trial, type, sequence) was already recorded."""
        cur = self._exec("INSERT OR IGNORE INTO metrics(trial_id, parameter_id, type, sequence, value, timestamp) "
                         "VALUES(?,?,?,?,?,?)",
                         (trial_id, None if parameter_id is None else str(parameter_id), mtype, sequence,
                          json.dumps(value), timestamp or time.time()))
        return cur.rowcount == 1

    def metrics(self, trial_id: str | None = None, mtype: str | None = None) -> list[dict]:
        q, args = "SELECT * FROM metrics WHERE 1=1", []
        if trial_id is not None:
            q += " AND trial_id=?"
            args.append(trial_id)
        if mtype is not None:
            q += " AND type=?"
            args.append(mtype)
        rows = self._exec(q + " ORDER BY id", tuple(args)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["value"] = json.loads(d["value"])
            out.append(d)
        return out

    def intermediate_history(self, trial_id: str) -> list[Any]:
        return [m["value"] for m in self.metrics(trial_id, "PERIODICAL")]

    # -- views used by resume and export ---------------------------------------------------------
    def completed_results(self) -> list[dict]:
        """``[{parameter, value, trialJobId}]`` of every trial with a final result (tuner-generated
        ones first, in sequence order): what ``import_data`` rebuilds a tuner from."""
        rows = self._exec("SELECT trial_id, hyper_params, final FROM trials WHERE final IS NOT NULL "
                          "ORDER BY sequence_id").fetchall()
        return [{"parameter": json.loads(r[1]).get("parameters"), "value": json.loads(r[2]), "trialJobId": r[0]}
                for r in rows]
