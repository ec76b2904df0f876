"""The experiment's embedded store: one SQLite file in the experiment directory.

The controller writes here *before* it acts (a trial row before the trial is dispatched, a
metric row before the tuner hears of it), so any process may die and resume reads back
exactly what was reported.  WAL mode lets the CLI and ``view`` read while the controller
writes.  Metrics are unique per (trial, type, sequence): a report re-sent after a
controller restart is recorded once.

Reads go through the :class:`~nniray.storage.trial_store.TrialStore` port.  What a page
sorts or counts by is kept in indexed columns that SQLite itself maintains on every write
(triggers and a generated column), whichever code path writes: the default final value, the
number of intermediate results, the latest metric, a change counter for the changes feed,
and the sets of parameter names and final-dict keys (the UI's columns).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from nniray.errors import NniRayError

from .trial_store import (Changes, MetricRecord, MetricType, OptimizeMode, QueryError, SortOrder, TrialPage,
                          TrialQuery, TrialRecord, TrialStatus, TrialStore, sort_column)

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

# The default value of a final metric (a number, or a dict's numeric "default"), NULL otherwise.
# Text that is not strict JSON (Python's NaN / Infinity) has none.
_FINAL_VALUE = ("CASE WHEN final IS NULL OR NOT json_valid(final) THEN NULL "
                "WHEN json_type(final) IN ('integer', 'real') THEN json_extract(final, '$') "
                "WHEN json_type(final) = 'object' AND json_type(final, '$.\"default\"') IN ('integer', 'real') "
                "THEN json_extract(final, '$.\"default\"') END")


def _bump(row: str) -> str:
    return (f"UPDATE change_counter SET n = n + 1; "
            f"UPDATE trials SET change_seq = (SELECT n FROM change_counter) WHERE rowid = {row}.rowid;")


def _keys_of(expr: str, table: str) -> str:
    """Insert the keys of a JSON object ``expr`` (anything else adds none) into ``table``."""
    return (f"INSERT OR IGNORE INTO {table}(name) SELECT key FROM json_each(CASE WHEN {expr} IS NOT NULL "
            f"AND json_valid({expr}) AND json_type({expr}) = 'object' THEN {expr} ELSE '{{}}' END) "
            f"WHERE key IS NOT NULL;")


def _object(expr: str) -> str:
    """``expr`` if it is a JSON object, else an empty one (json_each of bad JSON would raise)."""
    return (f"CASE WHEN {expr} IS NOT NULL AND json_valid({expr}) AND json_type({expr}) = 'object' "
            f"THEN {expr} ELSE '{{}}' END")


def _values_of(expr: str, kind: int) -> str:
    return (f"INSERT OR REPLACE INTO trial_values SELECT NEW.trial_id, {kind}, j.key, j.value, NEW.sequence_id "
            f"FROM json_each({_object(expr)}) AS j WHERE j.key IS NOT NULL;")


# Schema migrations, applied in order; PRAGMA user_version says how many a file has had.  A
# file written by an older nniray is brought up to date the first time it is opened.
MIGRATIONS: list[str] = [
    # 1: indexed read path (sort by final value, changes feed, the UI's columns).  Metrics get no
    # trigger: an insert per metric stays one index update (a per-metric UPDATE of the trial row
    # cut the metric write rate by 3x); per-trial counts are read for a page's rows only.
    f"""
    ALTER TABLE trials ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE trials ADD COLUMN final_value REAL GENERATED ALWAYS AS ({_FINAL_VALUE}) VIRTUAL;
    CREATE TABLE IF NOT EXISTS change_counter (n INTEGER NOT NULL);
    INSERT INTO change_counter(n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM change_counter);
    CREATE TABLE IF NOT EXISTS param_names (name TEXT PRIMARY KEY NOT NULL);
    CREATE TABLE IF NOT EXISTS final_keys (name TEXT PRIMARY KEY NOT NULL);
    UPDATE trials SET change_seq = sequence_id + 1;
    UPDATE change_counter SET n = (SELECT COALESCE(MAX(change_seq), 0) FROM trials);
    INSERT OR IGNORE INTO param_names(name) SELECT DISTINCT j.key FROM trials,
        json_each(CASE WHEN json_valid(hyper_params) AND json_type(hyper_params, '$.parameters') = 'object'
                  THEN json_extract(hyper_params, '$.parameters') ELSE '{{}}' END) AS j WHERE j.key IS NOT NULL;
    INSERT OR IGNORE INTO final_keys(name) SELECT DISTINCT j.key FROM trials,
        json_each(CASE WHEN final IS NOT NULL AND json_valid(final) AND json_type(final) = 'object'
                  THEN final ELSE '{{}}' END) AS j WHERE j.key IS NOT NULL;
    CREATE INDEX IF NOT EXISTS trials_final_value ON trials(final_value);
    CREATE INDEX IF NOT EXISTS trials_status_seq ON trials(status, sequence_id);
    CREATE INDEX IF NOT EXISTS trials_status_final ON trials(status, final_value);
    CREATE INDEX IF NOT EXISTS trials_change_seq ON trials(change_seq);
    CREATE TRIGGER IF NOT EXISTS trials_inserted AFTER INSERT ON trials BEGIN
        {_bump('NEW')}
        {_keys_of("json_extract(NEW.hyper_params, '$.parameters')", 'param_names')}
        {_keys_of('NEW.final', 'final_keys')}
    END;
    CREATE TRIGGER IF NOT EXISTS trials_changed AFTER UPDATE OF status, start_time, end_time, message, final,
            hyper_params, node ON trials BEGIN
        {_bump('NEW')}
        {_keys_of('NEW.final', 'final_keys')}
    END;
    """,
    # 2 (faults, issue 8): each attempt of a retried trial (maxTrialRetries) keeps its own
    # metrics: unique per (trial, attempt, type, sequence) instead of (trial, type, sequence).
    # SQLite cannot change a table's UNIQUE constraint in place: rebuild the table (which drops
    # its index, made again).
    """
    CREATE TABLE metrics_by_attempt (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        trial_id TEXT NOT NULL,
        parameter_id TEXT,
        type TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        value TEXT NOT NULL,
        timestamp REAL NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        UNIQUE(trial_id, attempt, type, sequence)
    );
    INSERT INTO metrics_by_attempt(id, trial_id, parameter_id, type, sequence, value, timestamp, attempt)
        SELECT id, trial_id, parameter_id, type, sequence, value, timestamp, 0 FROM metrics ORDER BY id;
    DROP TABLE metrics;
    ALTER TABLE metrics_by_attempt RENAME TO metrics;
    CREATE INDEX IF NOT EXISTS metrics_trial ON metrics(trial_id);
    """,
    # 3: the FINAL row of a trial without reading its intermediate results (TrialJobInfo lists
    # of many trials): a partial index, one entry per trial, untouched by PERIODICAL writes.
    """
    CREATE INDEX IF NOT EXISTS metrics_final ON metrics(trial_id) WHERE type = 'FINAL';
    """,
    # 4: parameter values and final-dict values as indexed rows (kind 0: parameter, 1: final
    # key), kept by triggers: a page sorted or filtered by a parameter or a metric key walks an
    # index instead of parsing every trial's JSON.
    f"""
    CREATE TABLE IF NOT EXISTS trial_values (
        trial_id TEXT NOT NULL, kind INTEGER NOT NULL, name TEXT NOT NULL, value, sequence_id INTEGER NOT NULL,
        PRIMARY KEY (trial_id, kind, name)) WITHOUT ROWID;
    INSERT OR REPLACE INTO trial_values SELECT t.trial_id, 0, j.key, j.value, t.sequence_id FROM trials t,
        json_each({_object("json_extract(t.hyper_params, '$.parameters')")}) AS j WHERE j.key IS NOT NULL;
    INSERT OR REPLACE INTO trial_values SELECT t.trial_id, 1, j.key, j.value, t.sequence_id FROM trials t,
        json_each({_object('t.final')}) AS j WHERE j.key IS NOT NULL;
    CREATE INDEX IF NOT EXISTS trial_values_sorted ON trial_values(kind, name, value, sequence_id);
    CREATE TRIGGER IF NOT EXISTS trial_values_inserted AFTER INSERT ON trials BEGIN
        {_values_of("json_extract(NEW.hyper_params, '$.parameters')", 0)}
        {_values_of('NEW.final', 1)}
    END;
    CREATE TRIGGER IF NOT EXISTS trial_values_final AFTER UPDATE OF final ON trials BEGIN
        DELETE FROM trial_values WHERE trial_id = NEW.trial_id AND kind = 1;
        {_values_of('NEW.final', 1)}
    END;
    CREATE TRIGGER IF NOT EXISTS trial_values_params AFTER UPDATE OF hyper_params ON trials BEGIN
        DELETE FROM trial_values WHERE trial_id = NEW.trial_id AND kind = 0;
        {_values_of("json_extract(NEW.hyper_params, '$.parameters')", 0)}
    END;
    """,
    # 5: trials per status kept by triggers (counts without a scan of every trial), and sort
    # indexes that end with the sequence id (the tie-break), so a page's ids come from the
    # index alone, also deep into the order.
    """
    CREATE TABLE IF NOT EXISTS status_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT OR REPLACE INTO status_counts(status, n) SELECT status, COUNT(*) FROM trials GROUP BY status;
    CREATE TRIGGER IF NOT EXISTS status_counted AFTER INSERT ON trials BEGIN
        INSERT INTO status_counts(status, n) VALUES (NEW.status, 1) ON CONFLICT(status) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER IF NOT EXISTS status_moved AFTER UPDATE OF status ON trials WHEN OLD.status IS NOT NEW.status
    BEGIN
        UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
        INSERT INTO status_counts(status, n) VALUES (NEW.status, 1) ON CONFLICT(status) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER IF NOT EXISTS status_uncounted AFTER DELETE ON trials BEGIN
        UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
    END;
    DROP INDEX IF EXISTS trials_final_value;
    DROP INDEX IF EXISTS trials_status_final;
    CREATE INDEX IF NOT EXISTS trials_final_seq ON trials(final_value, sequence_id);
    CREATE INDEX IF NOT EXISTS trials_status_final_seq ON trials(status, final_value, sequence_id);
    CREATE INDEX IF NOT EXISTS trials_start_seq ON trials(start_time, sequence_id);
    CREATE INDEX IF NOT EXISTS trials_end_seq ON trials(end_time, sequence_id);
    """,
]

TRIAL_FIELDS = ("trial_id", "sequence_id", "parameter_id", "hyper_params", "status", "submit_time",
                "start_time", "end_time", "message", "final", "attempt", "node", "customized")
FINAL_STATUSES = tuple(s.value for s in TrialStatus if s.final)
_TRIAL_COLUMNS = ", ".join(TRIAL_FIELDS) + ", final_value"
_METRIC_COLUMNS = "id, trial_id, parameter_id, type, sequence, value, timestamp"
_PLAIN_SORT_SQL = {"sequenceId": "sequence_id", "trialJobId": "trial_id", "status": "status",
                   "startTime": "start_time", "endTime": "end_time", "duration": "(end_time - start_time)",
                   "final": "final_value"}


class FencedError(NniRayError, RuntimeError):
    """Another controller took over this experiment's store; this one must stop writing."""


class StoreVersionError(NniRayError, RuntimeError):
    """The store file is newer than this nniray, or too old to read and not writable to upgrade."""


def json_path(*keys: str) -> str:
    """A JSON path for SQLite's JSON1 functions with each key quoted (keys may hold dots)."""
    return "$" + "".join('."' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)


def _decode(text: Any) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def migrate(db: sqlite3.Connection) -> None:
    """Bring a writable connection's file to the current schema (idempotent, race-safe)."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreVersionError(f"the store has schema version {version}; this nniray reads up to "
                                    f"{len(MIGRATIONS)}: upgrade nniray")
        for step in MIGRATIONS[version:]:
            for stmt in _statements(step):
                db.execute(stmt)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``sqlite3.complete_statement`` keeps triggers whole)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


class ExperimentStore(TrialStore):
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
            self._upgrade_file()
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open_writable()
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        self._token: str | None = None

    def _open_writable(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a process crash (our failure model), and
        # is an order of magnitude cheaper than FULL.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        migrate(db)
        return db

    def _upgrade_file(self) -> None:
        """A reader of a file from an older nniray upgrades it once (readers need the new columns)."""
        probe = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            version = probe.execute("PRAGMA user_version").fetchone()[0]
        finally:
            probe.close()
        if version > len(MIGRATIONS):
            raise StoreVersionError(f"{self.path} has schema version {version}; this nniray reads up to "
                                    f"{len(MIGRATIONS)}: upgrade nniray")
        if version < len(MIGRATIONS):
            try:
                self._open_writable().close()
            except sqlite3.OperationalError as e:
                raise StoreVersionError(f"{self.path} was written by an older nniray and must be upgraded once, "
                                        f"but it cannot be written ({e}); open it once as its owner") from None

    def claim(self) -> str:
        """Become the only writer of this store (fencing token)."""
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

    def _exec(self, sql: str, args: tuple | list = ()) -> sqlite3.Cursor:
        with self._lock:
            if self._token is not None and self._depth == 0 and not sql.lstrip().upper().startswith("SELECT"):
                with self.transaction():  # a lone write is fenced too
                    return self._db.execute(sql, args)
            return self._db.execute(sql, args)

    def _all(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

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

    # -- trial writes ----------------------------------------------------------------------------
    def add_trial(self, trial_id: str, sequence_id: int, parameter_id: Any, hyper_params: dict,
                  status: str = "WAITING", customized: bool = False, attempt: int = 0) -> None:
        self._exec("INSERT INTO trials(trial_id, sequence_id, parameter_id, hyper_params, status, submit_time, "
                   "customized, attempt) VALUES(?,?,?,?,?,?,?,?)",
                   (trial_id, sequence_id, None if parameter_id is None else str(parameter_id),
                    json.dumps(hyper_params), str(TrialStatus(status).value), time.time(), int(customized), attempt))

    def update_trial(self, trial_id: str, **fields: Any) -> None:
        bad = set(fields) - set(TRIAL_FIELDS)
        if bad:
            raise KeyError(f"unknown trial fields {bad}")
        if "final" in fields and fields["final"] is not None:
            fields["final"] = json.dumps(fields["final"])
        if "hyper_params" in fields:
            fields["hyper_params"] = json.dumps(fields["hyper_params"])
        if "status" in fields:
            fields["status"] = TrialStatus(fields["status"]).value
        sets = ", ".join(f"{k}=?" for k in fields)
        self._exec(f"UPDATE trials SET {sets} WHERE trial_id=?", (*fields.values(), trial_id))

    # -- legacy dict reads (the controller's recovery uses these) --------------------------------
    def get_trial(self, trial_id: str) -> dict | None:
        t = self.trial(trial_id)
        return None if t is None else t.as_dict()

    def list_trials(self, status: str | tuple | None = None) -> list[dict]:
        statuses = () if status is None else ((status,) if isinstance(status, str) else tuple(status))
        return [t.as_dict() for t in self.iter_trials(statuses)]

    def count_trials(self) -> int:
        return self.count()

    def status_counts(self) -> dict[str, int]:
        return {k.value: v for k, v in self.counts_by_status().items()}

    def max_sequence_id(self) -> int:
        row = self._exec("SELECT MAX(sequence_id) FROM trials").fetchone()
        return -1 if row[0] is None else int(row[0])

    # -- metrics ---------------------------------------------------------------------------------
    def add_metric(self, trial_id: str, parameter_id: Any, mtype: str, sequence: int, value: Any,
                   timestamp: float | None = None, attempt: int = 0) -> bool:
        """Record a metric; False if this (trial, attempt, type, sequence) was already recorded."""
        cur = self._exec("INSERT OR IGNORE INTO metrics(trial_id, parameter_id, type, sequence, value, timestamp, "
                         "attempt) VALUES(?,?,?,?,?,?,?)",
                         (trial_id, None if parameter_id is None else str(parameter_id), mtype, sequence,
                          json.dumps(value), timestamp or time.time(), int(attempt or 0)))
        return cur.rowcount == 1

    def metrics(self, trial_id: str | None = None, mtype: str | None = None) -> list[dict]:
        if trial_id is not None:
            return [m.as_dict() for m in self.trial_metrics(trial_id, mtype)]
        return [m.as_dict() for m in self.iter_metrics(mtype)]

    def intermediate_history(self, trial_id: str) -> list[Any]:
        return [m.value for m in self.trial_metrics(trial_id, MetricType.PERIODICAL)]

    # -- views used by resume and export ---------------------------------------------------------
    def completed_results(self) -> list[dict]:
        """``[{parameter, value, trialJobId}]`` of every trial with a final result (in sequence
        order): what ``import_data`` rebuilds a tuner from."""
        return list(self.iter_completed_results())

    def iter_completed_results(self, batch_size: int = 2000) -> Iterator[dict]:
        last = -1
        while True:
            rows = self._all("SELECT sequence_id, trial_id, hyper_params, final FROM trials WHERE final IS NOT NULL "
                             "AND sequence_id > ? ORDER BY sequence_id LIMIT ?", (last, batch_size))
            for r in rows:
                yield {"parameter": json.loads(r[2]).get("parameters"), "value": json.loads(r[3]), "trialJobId": r[1]}
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    # ============================================================================ TrialStore (reads)
    @staticmethod
    def _record(r: sqlite3.Row, intermediate_count: int | None = 0) -> TrialRecord:
        return TrialRecord(
            trial_id=r["trial_id"], sequence_id=r["sequence_id"], parameter_id=r["parameter_id"],
            hyper_params=json.loads(r["hyper_params"]), status=TrialStatus(r["status"]),
            submit_time=r["submit_time"], start_time=r["start_time"], end_time=r["end_time"],
            message=r["message"], final=_decode(r["final"]),
            final_value=None if r["final_value"] is None else float(r["final_value"]),
            intermediate_count=intermediate_count, attempt=r["attempt"], node=r["node"],
            customized=bool(r["customized"]))

    def _records(self, rows: list[sqlite3.Row], with_counts: bool = True) -> list[TrialRecord]:
        """Records of these rows, with their intermediate counts (one indexed query for all;
        bulk reads skip it: ``intermediate_count`` is None there)."""
        if not with_counts:
            return [self._record(r, None) for r in rows]
        counts: dict[str, int] = {}
        ids = [r["trial_id"] for r in rows]
        for i in range(0, len(ids), 500):  # under SQLite's bound-parameter limit
            chunk = ids[i:i + 500]
            counts.update(self._all(f"SELECT trial_id, COUNT(*) FROM metrics WHERE trial_id IN "
                                    f"({','.join('?' * len(chunk))}) AND type='PERIODICAL' GROUP BY trial_id", chunk))
        return [self._record(r, counts.get(r["trial_id"], 0)) for r in rows]

    @staticmethod
    def _metric(r: sqlite3.Row) -> MetricRecord:
        return MetricRecord(id=r["id"], trial_id=r["trial_id"], parameter_id=r["parameter_id"],
                            type=MetricType(r["type"]), sequence=r["sequence"], value=_decode(r["value"]),
                            timestamp=r["timestamp"])

    @staticmethod
    def _statuses(statuses: Sequence[TrialStatus | str]) -> list[str]:
        out = []
        for s in statuses:
            try:
                out.append(TrialStatus(s).value)
            except ValueError:
                raise QueryError(f"status must be one of {', '.join(x.value for x in TrialStatus)}, "
                                 f"got {s!r}") from None
        return out

    def trial(self, trial_id: str) -> TrialRecord | None:
        rows = self._all(f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE trial_id=?", (trial_id,))
        return self._records(rows)[0] if rows else None

    def _where(self, q: TrialQuery) -> tuple[str, list]:
        clauses, args = [], []
        if q.statuses:
            names = self._statuses(q.statuses)
            clauses.append(f"status IN ({','.join('?' * len(names))})")
            args += names
        if q.search:
            # A trial id (substring, case-insensitive) or an exact sequence id.
            like = q.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            if q.search.strip().isdigit():
                clauses.append("(trial_id LIKE ? ESCAPE '\\' OR sequence_id = ?)")
                args += [f"%{like}%", int(q.search.strip())]
            else:
                clauses.append("trial_id LIKE ? ESCAPE '\\'")
                args.append(f"%{like}%")
        for name, value in q.params.items():  # through the (kind, name, value) index
            sub = "trial_id IN (SELECT trial_id FROM trial_values WHERE kind = 0 AND name = ? AND value {})"
            if isinstance(value, (dict, list)):
                clauses.append(sub.format("= json(?)"))
                args += [name, json.dumps(value)]
            elif value is None:
                clauses.append(sub.format("IS NULL"))
                args.append(name)
            else:
                clauses.append(sub.format("= ?"))
                args += [name, int(value) if isinstance(value, bool) else value]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def trials_page(self, query: TrialQuery) -> TrialPage:
        where, args = self._where(query)
        kind, key = sort_column(query.sort)
        order = "DESC" if SortOrder(query.order) is SortOrder.DESC else "ASC"
        if kind in ("final", "startTime", "endTime") and key is None:
            # Two index range scans instead of one sort of every trial: the rows with a value
            # (in the index's order), then those without.
            return self._final_page(query, where, args, order, _PLAIN_SORT_SQL[kind])
        if kind in ("final", "param"):
            return self._value_page(query, where, args, order, 0 if kind == "param" else 1, key)
        expr = _PLAIN_SORT_SQL[kind]
        if kind in ("sequenceId", "trialJobId", "status"):  # never NULL; an index gives the order
            tie = "" if kind in ("sequenceId", "trialJobId") else f", sequence_id {order}"
            ids = self._all(f"SELECT rowid FROM trials{where} ORDER BY {expr} {order}{tie} LIMIT ? OFFSET ?",
                            [*args, query.limit, query.offset])
            rows = self._rows_by_rowid([r[0] for r in ids])
        else:  # duration: an expression, sorted in SQLite; missing values last either way
            rows = self._all(f"SELECT {_TRIAL_COLUMNS} FROM trials{where} ORDER BY {expr} IS NULL, {expr} {order}, "
                             f"sequence_id {order} LIMIT ? OFFSET ?", [*args, query.limit, query.offset])
        return TrialPage(self._count_where(query, where, args), query.offset, query.limit, self._records(rows),
                         self.param_names(), self.final_keys())

    def _rows_by_rowid(self, rowids: list[int]) -> list[sqlite3.Row]:
        """Rows in the given order (a page's ids come from an index; its rows by primary key)."""
        if not rowids:
            return []
        got = {r["rowid"]: r for r in self._all(f"SELECT rowid, {_TRIAL_COLUMNS} FROM trials WHERE rowid IN "
                                                 f"({','.join('?' * len(rowids))})", rowids)}
        return [got[i] for i in rowids if i in got]

    def _count_where(self, query: TrialQuery, where: str, args: list) -> int:
        """The page's total, from the counters or an index where the filter allows."""
        if not where:
            return self.count()
        if not query.search and not query.params:
            return self.count(query.statuses)
        if not query.search and not query.statuses and len(query.params) == 1:
            (name, value), = query.params.items()
            if value is not None and not isinstance(value, (dict, list)):
                return self._all("SELECT COUNT(*) FROM trial_values WHERE kind = 0 AND name = ? AND value = ?",
                                 [name, int(value) if isinstance(value, bool) else value])[0][0]
        return self._all(f"SELECT COUNT(*) FROM trials{where}", args)[0][0]

    def _value_page(self, query: TrialQuery, where: str, args: list, order: str, kind: int, key: str) -> TrialPage:
        """Sorted by a parameter (kind 0) or a final-dict key (kind 1): the trials that have it in
        the order of the trial_values index, then those without it."""
        having = ("(SELECT trial_id AS vid, value AS vval, sequence_id AS vseq FROM trial_values "
                  "WHERE kind = ? AND name = ?) JOIN trials ON trials.trial_id = vid")
        if where:
            n_with = self._all(f"SELECT COUNT(*) FROM {having}{where}", [kind, key, *args])[0][0]
        else:  # the index alone counts them
            n_with = self._all("SELECT COUNT(*) FROM trial_values WHERE kind = ? AND name = ?", [kind, key])[0][0]
        n_all = self._count_where(query, where, args)
        rows: list = []
        if query.offset < n_with:
            rows = self._all(f"SELECT {_TRIAL_COLUMNS} FROM {having}{where} ORDER BY vval {order}, vseq {order} "
                             f"LIMIT ? OFFSET ?", [kind, key, *args, query.limit, query.offset])
        if len(rows) < query.limit:
            lacks = ("NOT EXISTS (SELECT 1 FROM trial_values v WHERE v.trial_id = trials.trial_id AND v.kind = ? "
                     "AND v.name = ?)")
            cond = f"{where} AND {lacks}" if where else f" WHERE {lacks}"
            rows += self._all(f"SELECT {_TRIAL_COLUMNS} FROM trials{cond} ORDER BY sequence_id {order} LIMIT ? OFFSET ?",
                              [*args, kind, key, query.limit - len(rows), max(0, query.offset - n_with)])
        return TrialPage(n_all, query.offset, query.limit, self._records(rows), self.param_names(), self.final_keys())

    def _final_page(self, query: TrialQuery, where: str, args: list, order: str, column: str) -> TrialPage:
        has = f"{where} AND {column} IS NOT NULL" if where else f" WHERE {column} IS NOT NULL"
        lacks = f"{where} AND {column} IS NULL" if where else f" WHERE {column} IS NULL"
        # Counted as all minus those without: "IS NULL" is an index lookup, while "IS NOT NULL"
        # would make SQLite scan every row (and compute the generated final value from its JSON).
        n_without = self._all(f"SELECT COUNT(*) FROM trials{lacks}", args)[0][0]
        n_all = self._count_where(query, where, args)
        n_with = n_all - n_without
        ids: list = []
        if query.offset < n_with:
            ids = self._all(f"SELECT rowid FROM trials{has} ORDER BY {column} {order}, sequence_id {order} "
                            f"LIMIT ? OFFSET ?", [*args, query.limit, query.offset])
        if len(ids) < query.limit:
            ids += self._all(f"SELECT rowid FROM trials{lacks} ORDER BY sequence_id {order} LIMIT ? OFFSET ?",
                             [*args, query.limit - len(ids), max(0, query.offset - n_with)])
        rows = self._rows_by_rowid([r[0] for r in ids])
        return TrialPage(n_all, query.offset, query.limit, self._records(rows), self.param_names(), self.final_keys())

    def iter_trials(self, statuses: Sequence[TrialStatus | str] = (), batch_size: int = 1000,
                    with_counts: bool = False) -> Iterator[TrialRecord]:
        names = self._statuses(statuses)
        cond = f" AND status IN ({','.join('?' * len(names))})" if names else ""
        last = -1
        while True:  # keyset pages: no read transaction or lock is held between batches
            rows = self._all(f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE sequence_id > ?{cond} "
                             f"ORDER BY sequence_id LIMIT ?", [last, *names, batch_size])
            yield from self._records(rows, with_counts)
            if len(rows) < batch_size:
                return
            last = rows[-1]["sequence_id"]

    def count(self, statuses: Sequence[TrialStatus | str] = ()) -> int:
        names = self._statuses(statuses)
        if not names:
            return self._all("SELECT COALESCE(SUM(n), 0) FROM status_counts")[0][0]
        return self._all(f"SELECT COALESCE(SUM(n), 0) FROM status_counts WHERE status IN "
                         f"({','.join('?' * len(names))})", names)[0][0]

    def counts_by_status(self) -> dict[TrialStatus, int]:
        return {TrialStatus(r[0]): r[1] for r in self._all("SELECT status, n FROM status_counts WHERE n > 0")}

    def best_trial(self, mode: OptimizeMode = OptimizeMode.MAXIMIZE) -> TrialRecord | None:
        order = "DESC" if OptimizeMode(mode) is OptimizeMode.MAXIMIZE else "ASC"
        rows = self._all(f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE final_value IS NOT NULL "
                         f"ORDER BY final_value {order}, sequence_id LIMIT 1")
        return self._records(rows)[0] if rows else None

    def trial_metrics(self, trial_id: str, mtype: MetricType | str | None = None) -> list[MetricRecord]:
        if mtype is None:
            rows = self._all(f"SELECT {_METRIC_COLUMNS} FROM metrics WHERE trial_id=? ORDER BY id", (trial_id,))
        else:
            rows = self._all(f"SELECT {_METRIC_COLUMNS} FROM metrics WHERE trial_id=? AND type=? ORDER BY id",
                             (trial_id, str(getattr(mtype, "value", mtype))))
        return [self._metric(r) for r in rows]

    def finals_of(self, trial_ids: Sequence[str]) -> dict[str, list[MetricRecord]]:
        out: dict[str, list[MetricRecord]] = {}
        ids = list(trial_ids)
        for i in range(0, len(ids), 500):  # under SQLite's bound-parameter limit
            chunk = ids[i:i + 500]
            rows = self._all(f"SELECT {_METRIC_COLUMNS} FROM metrics WHERE trial_id IN ({','.join('?' * len(chunk))}) "
                             f"AND type='FINAL' ORDER BY id", chunk)
            for r in rows:
                out.setdefault(r["trial_id"], []).append(self._metric(r))
        return out

    def iter_metrics(self, mtype: MetricType | str | None = None, batch_size: int = 5000) -> Iterator[MetricRecord]:
        cond, extra = ("", []) if mtype is None else (" AND type=?", [str(getattr(mtype, "value", mtype))])
        last = 0
        while True:
            rows = self._all(f"SELECT {_METRIC_COLUMNS} FROM metrics WHERE id > ?{cond} ORDER BY id LIMIT ?",
                             [last, *extra, batch_size])
            for r in rows:
                yield self._metric(r)
            if len(rows) < batch_size:
                return
            last = rows[-1]["id"]

    def metrics_in_sequence_range(self, lo: int, hi: int) -> list[MetricRecord]:
        rows = self._all(f"SELECT {', '.join('m.' + c for c in _METRIC_COLUMNS.split(', '))} FROM trials t "
                         f"JOIN metrics m ON m.trial_id = t.trial_id WHERE t.sequence_id BETWEEN ? AND ? "
                         f"ORDER BY m.id", (lo, hi))
        return [self._metric(r) for r in rows]

    def latest_metrics(self) -> list[MetricRecord]:
        rows = self._all(f"SELECT {', '.join('m.' + c for c in _METRIC_COLUMNS.split(', '))} FROM trials t "
                         f"JOIN metrics m ON m.id = (SELECT MAX(id) FROM metrics WHERE trial_id = t.trial_id) "
                         f"ORDER BY t.sequence_id")
        return [self._metric(r) for r in rows]

    def metric_series(self, trial_ids: Sequence[str], max_points: int, key: str = "default") -> dict[str, list[tuple[int, float]]]:
        from nniray.utils import MetricError, extract_scalar_reward
        out: dict[str, list[tuple[int, float]]] = {}
        ids = list(trial_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            rows = self._all(f"SELECT trial_id, sequence, value FROM metrics WHERE trial_id IN "
                             f"({','.join('?' * len(chunk))}) AND type='PERIODICAL' ORDER BY trial_id, sequence", chunk)
            for r in rows:
                try:
                    v = extract_scalar_reward(_decode(r[2]), key)
                except MetricError:
                    continue
                out.setdefault(r[0], []).append((r[1], v))
        for tid, pts in out.items():
            if len(pts) > max_points:
                step = len(pts) / max_points
                out[tid] = [pts[int(i * step)] for i in range(max_points - 1)] + [pts[-1]]
        return out

    def finals(self, max_points: int) -> tuple[int, list[TrialRecord]]:
        total = (self._all("SELECT COUNT(*) FROM trials")[0][0]
                 - self._all("SELECT COUNT(*) FROM trials WHERE final_value IS NULL")[0][0])
        if total <= max_points:
            rows = self._all(f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE final_value IS NOT NULL ORDER BY sequence_id")
        else:
            # Every step-th sequence id: evenly spread, at most max_points rows, and the final's
            # JSON is looked at only for the rows kept.
            span = self.max_sequence_id() + 1
            step = max(1, -(-span // max_points))
            wanted = list(range(0, span, step))[:max_points]
            rows = []
            for i in range(0, len(wanted), 500):  # sequence-id index lookups, not a scan
                chunk = wanted[i:i + 500]
                rows += self._all(f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE sequence_id IN "
                                  f"({','.join('?' * len(chunk))}) AND final_value IS NOT NULL ORDER BY sequence_id",
                                  chunk)
        return total, self._records(rows, with_counts=False)

    def changes_since(self, trial_cursor: int, metric_cursor: int, limit: int = 1000) -> Changes:
        trows = self._all(f"SELECT {_TRIAL_COLUMNS}, change_seq FROM trials WHERE change_seq > ? "
                          f"ORDER BY change_seq LIMIT ?", (trial_cursor, limit))
        mrows = self._all(f"SELECT {_METRIC_COLUMNS} FROM metrics WHERE id > ? ORDER BY id LIMIT ?",
                          (metric_cursor, limit))
        return Changes(trows[-1]["change_seq"] if trows else trial_cursor,
                       mrows[-1]["id"] if mrows else metric_cursor,
                       self._records(trows), [self._metric(r) for r in mrows])

    def cursors(self) -> tuple[int, int]:
        """The current ``(trial, metric)`` cursors: a changes feed started now begins here."""
        t = self._all("SELECT n FROM change_counter")
        m = self._all("SELECT COALESCE(MAX(id), 0) FROM metrics")
        return (t[0][0] if t else 0), m[0][0]

    def param_names(self) -> list[str]:
        return [r[0] for r in self._all("SELECT name FROM param_names ORDER BY name")]

    def final_keys(self) -> list[str]:
        return [r[0] for r in self._all("SELECT name FROM final_keys ORDER BY name")]
