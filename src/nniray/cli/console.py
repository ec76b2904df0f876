"""Output helpers: one rich console, NNI's message prefixes, dates and tables."""
from __future__ import annotations

import json
import sys
import time
from typing import Any, Iterable

from rich.console import Console
from rich.table import Table


def console() -> Console:
    # A pipe (tests, `| grep`) gets wide lines: ids and paths must never be cut or wrapped.
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(width=240, highlight=False, no_color=True, soft_wrap=True)


def info(msg: str) -> None:
    print(f"INFO: {msg}", flush=True)


def warning(msg: str) -> None:
    print(f"WARNING: {msg}", file=sys.stderr, flush=True)


def date(seconds_or_ms: float | None, is_ms: bool = False) -> str:
    """NNI's ``%Y/%m/%d %H:%M:%S`` in local time; 'N/A' when unknown."""
    if seconds_or_ms is None:
        return "N/A"
    s = seconds_or_ms / 1000 if is_ms else seconds_or_ms
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(s))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "N/A"
    seconds = int(seconds)
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}d {h}h {m}m {s}s" if d else f"{h}h {m}m {s}s" if h else f"{m}m {s}s"


def dump_json(obj: Any) -> None:
    """nnictl's JSON printing: sorted keys, 4-space indent."""
    print(json.dumps(obj, indent=4, sort_keys=True, separators=(",", ":")))


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    t = Table(title=title, header_style="bold", show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    return t
