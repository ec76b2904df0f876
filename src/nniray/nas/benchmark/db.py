"""NAS-benchmark databases: NNI's SQLite schema, read with the standard library.

Each benchmark is one SQLite file ``<name>.db`` in ``$NASBENCHMARK_DIR`` (default
``${XDG_CACHE_HOME:-~/.cache}/nni/nasbenchmark``, as NNI), with three tables named as NNI's
peewee models: ``<b>trialconfig``, ``<b>trialstats`` (``config_id`` → config) and
``<b>intermediatestats`` (``trial_id`` → stats).  Dict-valued columns (``arch``,
``model_spec``, ``cell_spec``) hold JSON with sorted keys, so a query compares them exactly.
Queries are lazy generators of plain dicts; every filter is a ``None`` wildcard.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterator

__all__ = ["SCHEMAS", "benchmark_dir", "connect", "create", "query", "BenchmarkNotFound"]

JSON_FIELDS = {"arch", "model_spec", "cell_spec"}

# table prefix -> (config columns, stats columns, intermediate columns); types are SQLite's
SCHEMAS: dict[str, tuple[dict, dict, dict]] = {
    "nb101": ({"arch": "TEXT", "num_vertices": "INTEGER", "hash": "TEXT", "num_epochs": "INTEGER"},
              {"train_acc": "REAL", "valid_acc": "REAL", "test_acc": "REAL", "parameters": "REAL",
               "training_time": "REAL"},
              {"current_epoch": "INTEGER", "train_acc": "REAL", "valid_acc": "REAL", "test_acc": "REAL",
               "training_time": "REAL"}),
    "nb201": ({"arch": "TEXT", "num_epochs": "INTEGER", "num_channels": "INTEGER", "num_cells": "INTEGER",
               "dataset": "TEXT"},
              {"seed": "INTEGER", "train_acc": "REAL", "valid_acc": "REAL", "test_acc": "REAL", "ori_test_acc": "REAL",
               "train_loss": "REAL", "valid_loss": "REAL", "test_loss": "REAL", "ori_test_loss": "REAL",
               "parameters": "REAL", "latency": "REAL", "flops": "REAL", "training_time": "REAL",
               "valid_evaluation_time": "REAL", "test_evaluation_time": "REAL", "ori_test_evaluation_time": "REAL"},
              {"current_epoch": "INTEGER", "train_acc": "REAL", "valid_acc": "REAL", "test_acc": "REAL",
               "ori_test_acc": "REAL", "train_loss": "REAL", "valid_loss": "REAL", "test_loss": "REAL",
               "ori_test_loss": "REAL"}),
    "nds": ({"model_family": "TEXT", "model_spec": "TEXT", "cell_spec": "TEXT", "dataset": "TEXT", "generator": "TEXT",
             "proposer": "TEXT", "base_lr": "REAL", "weight_decay": "REAL", "num_epochs": "INTEGER"},
            {"seed": "INTEGER", "final_train_acc": "REAL", "final_train_loss": "REAL", "final_test_acc": "REAL",
             "best_train_acc": "REAL", "best_train_loss": "REAL", "best_test_acc": "REAL", "parameters": "REAL",
             "flops": "REAL", "iter_time": "REAL"},
            {"current_epoch": "INTEGER", "train_loss": "REAL", "train_acc": "REAL", "test_acc": "REAL"}),
    "nlp": ({"arch": "TEXT", "dataset": "TEXT"},
            {"train_loss": "REAL", "val_loss": "REAL", "test_loss": "REAL", "training_time": "REAL"},
            {"current_epoch": "INTEGER", "train_loss": "REAL", "val_loss": "REAL", "test_loss": "REAL",
             "training_time": "REAL"}),
}
DB_FILES = {"nb101": "nasbench101", "nb201": "nasbench201", "nds": "nds", "nlp": "nlp"}


class BenchmarkNotFound(FileNotFoundError):
    """The database file is not there; the message says how to get or make it."""


def benchmark_dir() -> Path:
    if os.environ.get("NASBENCHMARK_DIR"):
        return Path(os.environ["NASBENCHMARK_DIR"]).expanduser()
    if os.environ.get("NNI_HOME"):
        return Path(os.environ["NNI_HOME"]).expanduser() / "nasbenchmark"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(cache) / "nni" / "nasbenchmark"


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def connect(prefix: str) -> sqlite3.Connection:
    path = benchmark_dir() / f"{DB_FILES[prefix]}.db"
    if not path.exists():
        raise BenchmarkNotFound(
            f"no {DB_FILES[prefix]} database at {path}: run `python -m nniray.nas.benchmark.download "
            f"{DB_FILES[prefix]}` (needs internet), or set NASBENCHMARK_DIR to a folder holding {path.name} "
            f"(benchmarks/nas/make_benchmark_db.py makes a small one)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def create(path: str | Path, prefix: str) -> sqlite3.Connection:
    """An empty database of one benchmark's schema (for generator scripts)."""
    cfg, stats, inter = SCHEMAS[prefix]
    conn = sqlite3.connect(str(path))
    cols = lambda d: ", ".join(f"{k} {t}" for k, t in d.items())  # noqa: E731
    conn.executescript(f"""
        CREATE TABLE IF NOT EXISTS {prefix}trialconfig (id INTEGER PRIMARY KEY, {cols(cfg)});
        CREATE TABLE IF NOT EXISTS {prefix}trialstats (id INTEGER PRIMARY KEY,
            config_id INTEGER REFERENCES {prefix}trialconfig(id), {cols(stats)});
        CREATE TABLE IF NOT EXISTS {prefix}intermediatestats (id INTEGER PRIMARY KEY,
            trial_id INTEGER REFERENCES {prefix}trialstats(id), {cols(inter)});
        CREATE INDEX IF NOT EXISTS {prefix}_stats_config ON {prefix}trialstats(config_id);
        CREATE INDEX IF NOT EXISTS {prefix}_inter_trial ON {prefix}intermediatestats(trial_id);
    """)
    return conn


def insert_config(conn: sqlite3.Connection, prefix: str, **fields: Any) -> int:
    fields = {k: (_canon(v) if k in JSON_FIELDS else v) for k, v in fields.items()}
    cur = conn.execute(f"INSERT INTO {prefix}trialconfig ({', '.join(fields)}) VALUES "
                       f"({', '.join('?' * len(fields))})", list(fields.values()))
    return int(cur.lastrowid)


def insert_row(conn: sqlite3.Connection, table: str, **fields: Any) -> int:
    cur = conn.execute(f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                       list(fields.values()))
    return int(cur.lastrowid)


def _decode(row: sqlite3.Row, columns: list[str]) -> dict:
    out = {}
    for k in columns:
        v = row[k]
        if k in JSON_FIELDS and isinstance(v, str):
            v = json.loads(v)
        elif isinstance(v, float) and v != v:  # NaN is returned as None, as NNI does
            v = None
        out[k] = v
    return out


def query(prefix: str, config_filters: dict[str, Any], reduction: str | None = None,
          include_intermediates: bool = False) -> Iterator[dict]:
    """Trials matching every non-None filter, as dicts ``{stats..., 'config': {...}}``."""
    if reduction not in (None, "none", "mean"):
        raise ValueError(f"reduction must be None, 'none' or 'mean', got {reduction!r}")
    cfg_cols, stats_cols, inter_cols = (list(s) for s in SCHEMAS[prefix])
    conn = connect(prefix)
    where, args = [], []
    for k, v in config_filters.items():
        if v is None:
            continue
        where.append(f"c.{k} = ?")
        args.append(_canon(v) if k in JSON_FIELDS else v)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    try:
        if reduction == "mean":
            numeric = [k for k, t in SCHEMAS[prefix][1].items() if t == "REAL"]
            sql = (f"SELECT c.id AS config_id, {', '.join('c.' + k for k in cfg_cols)}, "
                   f"{', '.join(f'AVG(s.{k}) AS {k}' for k in numeric)} FROM {prefix}trialstats s "
                   f"JOIN {prefix}trialconfig c ON s.config_id = c.id {clause} GROUP BY c.id ORDER BY c.id")
            for row in conn.execute(sql, args):
                out = _decode(row, numeric)
                out["config"] = {"id": row["config_id"], **_decode(row, cfg_cols)}
                yield out
            return
        sql = (f"SELECT s.id AS trial_id, c.id AS config_id, {', '.join('c.' + k + ' AS c_' + k for k in cfg_cols)}, "
               f"{', '.join('s.' + k for k in stats_cols)} FROM {prefix}trialstats s JOIN {prefix}trialconfig c "
               f"ON s.config_id = c.id {clause} ORDER BY s.id")
        for row in conn.execute(sql, args):
            out = {"id": row["trial_id"], **_decode(row, stats_cols)}
            cfg = {"id": row["config_id"]}
            for k in cfg_cols:
                v = row["c_" + k]
                cfg[k] = json.loads(v) if k in JSON_FIELDS and isinstance(v, str) else v
            out["config"] = cfg
            if include_intermediates:
                rows = conn.execute(f"SELECT id, {', '.join(inter_cols)} FROM {prefix}intermediatestats "
                                    f"WHERE trial_id = ? ORDER BY current_epoch", (row["trial_id"],))
                out["intermediates"] = [{"id": r["id"], **_decode(r, inter_cols)} for r in rows]
            yield out
    finally:
        conn.close()
