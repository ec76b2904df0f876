"""The per-attempt metrics file of a trial: where it is, what a record is, how it is read back.

This is the contract between a trial, its runner and whoever recovers a trial whose runner is
gone (the controller after a runner died, ``resume`` after the driver died); see
``docs/decisions/faults.md``.

- Each *attempt* of a trial (``maxTrialRetries`` re-runs a trial under the same id) has its own
  directory, :func:`attempt_dir`: the trial directory itself for attempt 0 (NNI's layout), and
  ``<trial dir>/attempt-<n>`` for attempt n >= 1.  It is the trial's ``NNI_SYS_DIR``.
- Its metrics file is ``<attempt dir>/.nni/metrics``: JSON lines
  ``{"type": "PERIODICAL" | "FINAL", "value": <metric>, "time": <unix seconds>}``.  Command
  trials append to it themselves (one ``O_APPEND`` write per line); for function trials the
  runner appends each report to it *before* sending it, so both kinds can be recovered alike.
- An event's ``sequence`` is the number of valid records of the same type before it in the
  same file, so a reader that starts over from byte 0 numbers every record as the runner did,
  and the store's uniqueness on (trial, attempt, type, sequence) keeps each value once.
- A malformed record (not JSON, not an object, unknown type, a value that is not a finite
  number or a dict with a finite numeric ``default``, an integer beyond float range, a second
  FINAL) is not an event and does not take a sequence number; the runner fails the trial with
  the reason (:class:`RecordError`), naming the file and line.
- ``<attempt dir>/.nni/state`` is "<exit code> <end time ms>", written by the runner when the
  attempt ended (for both kinds of trial): an interrupted trial whose state says 0 had finished.
- ``<attempt dir>/.nni/supervisor`` holds the PID of the command trial's supervisor once it is
  started; ``<attempt dir>/.nni/ended`` is written when every process of the attempt is gone,
  so a recovering reader knows the file is complete.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

RECORD_TYPES = ("PERIODICAL", "FINAL")


def attempt_dir(trial_dir: str | os.PathLike, attempt: int) -> str:
    trial_dir = os.fspath(trial_dir)
    return trial_dir if not attempt else os.path.join(trial_dir, f"attempt-{int(attempt)}")


def metrics_path(trial_dir: str | os.PathLike, attempt: int) -> str:
    return os.path.join(attempt_dir(trial_dir, attempt), ".nni", "metrics")


def supervisor_marker(trial_dir: str | os.PathLike, attempt: int) -> str:
    return os.path.join(attempt_dir(trial_dir, attempt), ".nni", "supervisor")


def ended_marker(trial_dir: str | os.PathLike, attempt: int) -> str:
    return os.path.join(attempt_dir(trial_dir, attempt), ".nni", "ended")


def state_path(trial_dir: str | os.PathLike, attempt: int) -> str:
    return os.path.join(attempt_dir(trial_dir, attempt), ".nni", "state")


def ended_state(trial_dir: str | os.PathLike, attempt: int) -> int | None:
    """The exit code the runner recorded when the attempt ended (0: it succeeded), or None if
    it did not record one (the attempt was interrupted, or was stopped without a code)."""
    try:
        with open(state_path(trial_dir, attempt)) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def encode(mtype: str, value: Any) -> bytes:
    return (json.dumps({"type": mtype, "value": value, "time": time.time()}, allow_nan=False) + "\n").encode()


@dataclass
class RecordError:
    line: int  # 1-based line number in the metrics file
    reason: str

    def message(self, path: str) -> str:
        return f"malformed record in {path} line {self.line}: {self.reason}"


def check_value(value: Any) -> str | None:
    """Why ``value`` cannot be a metric (None if it can): a finite number, or a dict whose
    ``default`` is one and whose content is valid JSON with finite numbers."""
    raw = value
    if isinstance(value, dict):
        if "default" not in value:
            return f"metric dict {_short(raw)} has no 'default' key"
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            return f"metric dict {_short(raw)} is not JSON with finite numbers ({e})"
        value = value["default"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"metric {_short(raw)} is not a number"
    try:
        f = float(value)
    except OverflowError:
        return f"metric is an integer of {len(str(abs(value)))} digits, beyond float range"
    if not math.isfinite(f):
        return f"metric {_short(raw)} is not finite (NaN or inf)"
    if isinstance(raw, dict):
        for v in _numbers(raw):
            try:
                float(v)
            except OverflowError:
                return "metric dict holds an integer beyond float range"
    return None


def _numbers(obj: Any):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, int) and not isinstance(obj, bool):
        yield obj


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


@dataclass
class RecordReader:
    """Incremental parser of one metrics file; numbering as described in the module doc."""

    path: str
    offset: int = 0
    line_no: int = 0
    counts: dict = field(default_factory=lambda: {t: 0 for t in RECORD_TYPES})

    def read(self, complete: bool = False) -> tuple[list[dict], list[RecordError]]:
        """New records since the last call, as ``{type, sequence, value, time}``, and the
        malformed ones.  A last line without its newline is left for the next call unless
        ``complete`` (the writer is gone: a trailing record is whole or never will be)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return [], []
        end = len(data) if complete else data.rfind(b"\n") + 1
        if end <= 0:
            return [], []
        self.offset += end
        events, errors = [], []
        chunk = data[:end]
        lines = chunk.split(b"\n")
        if chunk.endswith(b"\n"):
            lines.pop()  # the empty tail after the last newline
        for line in lines:
            self.line_no += 1
            if not line.strip():
                continue
            rec, why = _parse(line)
            if why is None and rec["type"] == "FINAL" and self.counts["FINAL"] > 0:
                why = "a second FINAL record (a trial reports its final result once)"
            if why is not None:
                errors.append(RecordError(self.line_no, why))
                continue
            seq = self.counts[rec["type"]]
            self.counts[rec["type"]] = seq + 1
            events.append({"type": rec["type"], "sequence": seq, "value": rec["value"],
                           "time": rec.get("time") if isinstance(rec.get("time"), (int, float)) else None})
        return events, errors


def _parse(line: bytes) -> tuple[dict | None, str | None]:
    try:
        rec = json.loads(line)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, or an int of > 4300 digits
        return None, f"not valid JSON ({str(e)[:120]})"
    if not isinstance(rec, dict):
        return None, "a record must be a JSON object with 'type' and 'value'"
    if rec.get("type") not in RECORD_TYPES:
        return None, f"unknown record type {_short(rec.get('type'))} (expected PERIODICAL or FINAL)"
    if "value" not in rec:
        return None, "a record without 'value'"
    why = check_value(rec["value"])
    return (rec, None) if why is None else (None, why)


def recover(trial_dir: str | os.PathLike, trial_id: str, parameter_id: Any, attempt: int,
            wait_s: float = 10.0) -> tuple[list[dict], list[str]]:
    """Every event in an attempt's metrics file, from byte 0, as the runner would have sent
    them (``{trial_id, parameter_id, attempt, type, sequence, value, timestamp}``), and the
    malformed records' messages.  For a trial whose runner is gone: give the store all of them
    (it keeps each (trial, attempt, type, sequence) once).  If a supervisor was started and has
    not finished killing the attempt's processes, wait for it up to ``wait_s`` seconds first."""
    if os.path.exists(supervisor_marker(trial_dir, attempt)):
        deadline = time.time() + wait_s
        while not os.path.exists(ended_marker(trial_dir, attempt)) and time.time() < deadline:
            if not _supervisor_alive(supervisor_marker(trial_dir, attempt)):
                break
            time.sleep(0.05)
    path = metrics_path(trial_dir, attempt)
    reader = RecordReader(path)
    records, errors = reader.read(complete=True)
    events = [{"trial_id": trial_id, "parameter_id": parameter_id, "attempt": attempt, "type": r["type"],
               "sequence": r["sequence"], "value": r["value"], "timestamp": r["time"] or time.time()}
              for r in records]
    return events, [e.message(path) for e in errors]


def _supervisor_alive(marker: str) -> bool:
    try:
        with open(marker) as f:
            pid = int(f.read().split()[0])
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (OSError, ValueError, IndexError):
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"
