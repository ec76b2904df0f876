"""NNI's REST shapes (``TrialJobInfo``, ``MetricDataRecord``, ``ExperimentProfile``...) built
from an experiment's SQLite store.

Used by the daemon's REST routes and by the CLI's read-only commands alike, so both show the
same data.  NNI's conventions are kept: times in milliseconds, ``hyperParameters`` as a list of
JSON strings, a metric's ``data`` as JSON text of the JSON text the trial reported (NNI's Python
client decodes it twice), ``export-data`` values as JSON text.  Nothing here imports Ray.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from nniray.storage import ExperimentStore, MetricRecord, MetricType, TrialRecord, TrialStatus, TrialStore
from nniray.utils import MetricError, extract_scalar_reward


def ms(seconds: float | None) -> int | None:
    """Seconds (as stored) to NNI's integer milliseconds."""
    return None if seconds is None else int(round(seconds * 1000))


def default_metric(value: Any) -> float | None:
    """The number a metric ranks by (a number, or a dict's ``default``); None if it has none."""
    try:
        return extract_scalar_reward(value)
    except MetricError:
        return None


def optimize_mode(config: dict) -> str:
    """The experiment's direction, from the first algorithm that states one (NNI's default:
    maximize)."""
    for kind in ("tuner", "advisor", "assessor"):
        args = (config.get(kind) or {}).get("classArgs") or {}
        if "optimize_mode" in args:
            return str(args["optimize_mode"]).lower()
    return "maximize"


def metric_record(m: MetricRecord | dict) -> dict:
    """A stored metric as NNI's ``MetricDataRecord``."""
    if isinstance(m, dict):
        m = MetricRecord(m.get("id", 0), m["trial_id"], m["parameter_id"], MetricType(m["type"]), m["sequence"],
                         m["value"], m["timestamp"])
    return {"timestamp": ms(m.timestamp), "trialJobId": m.trial_id, "parameterId": m.parameter_id,
            "type": m.type.value, "sequence": m.sequence, "data": json.dumps(json.dumps(m.value))}


def _hyper_parameters(hp: dict) -> str:
    hp = dict(hp)
    hp.setdefault("parameter_index", 0)
    return json.dumps(hp)


def trial_job_info(store: TrialStore, exp_dir: Path, t: TrialRecord | dict,
                   finals: list[MetricRecord] | None = None) -> dict:
    """A stored trial as NNI's ``TrialJobInfo``."""
    if isinstance(t, dict):
        t = store.trial(t["trial_id"]) or _record_of(t)
    tdir = os.path.join(exp_dir, "trials", t.trial_id)  # str paths: this runs per trial in big lists
    if finals is None:
        finals = store.trial_metrics(t.trial_id, MetricType.FINAL)
    info: dict[str, Any] = {
        "trialJobId": t.trial_id, "sequenceId": t.sequence_id, "status": t.status.value,
        "hyperParameters": [_hyper_parameters(t.hyper_params)],
        "logPath": tdir, "stderrPath": os.path.join(tdir, "stderr"),
        "startTime": ms(t.start_time or t.submit_time),
    }
    if t.end_time is not None:
        info["endTime"] = ms(t.end_time)
    if t.message:
        info["message"] = t.message
    if finals:
        info["finalMetricData"] = [metric_record(m) for m in finals]
    return info


def _record_of(d: dict) -> TrialRecord:
    return TrialRecord(d["trial_id"], d["sequence_id"], d.get("parameter_id"), d["hyper_params"],
                       TrialStatus(d["status"]), d["submit_time"], d.get("start_time"), d.get("end_time"),
                       d.get("message"), d.get("final"), default_metric(d.get("final")), 0, d.get("attempt", 0),
                       d.get("node"), bool(d.get("customized")))


def iter_trial_jobs(store: TrialStore, exp_dir: Path, status: str | None = None,
                    batch_size: int = 1000) -> Iterator[dict]:
    """Every trial as ``TrialJobInfo``, read batch by batch (bounded memory at any size)."""
    batch: list[TrialRecord] = []
    for t in store.iter_trials((status,) if status else (), batch_size=batch_size):
        batch.append(t)
        if len(batch) == batch_size:
            yield from _infos(store, exp_dir, batch)
            batch = []
    yield from _infos(store, exp_dir, batch)


def _infos(store: TrialStore, exp_dir: Path, batch: list[TrialRecord]) -> Iterator[dict]:
    finals = store.finals_of([t.trial_id for t in batch]) if batch else {}
    for t in batch:
        yield trial_job_info(store, exp_dir, t, finals.get(t.trial_id, []))


def trial_jobs(store: TrialStore, exp_dir: Path, status: str | None = None) -> list[dict]:
    return list(iter_trial_jobs(store, exp_dir, status))


def job_statistics(store: TrialStore) -> list[dict]:
    return [{"trialJobStatus": k.value, "trialJobNumber": v}
            for k, v in sorted(store.counts_by_status().items(), key=lambda kv: kv[0].value)]


def iter_metric_data(store: TrialStore, trial_id: str | None = None, mtype: str | None = None) -> Iterator[dict]:
    if trial_id is not None:
        for m in store.trial_metrics(trial_id, mtype):
            yield metric_record(m)
    else:
        for m in store.iter_metrics(mtype):
            yield metric_record(m)


def metric_data(store: TrialStore, trial_id: str | None = None, mtype: str | None = None) -> list[dict]:
    return list(iter_metric_data(store, trial_id, mtype))


def metric_data_latest(store: TrialStore) -> list[dict]:
    return [metric_record(m) for m in store.latest_metrics()]


def metric_data_range(store: TrialStore, min_seq: int, max_seq: int) -> list[dict]:
    return [metric_record(m) for m in store.metrics_in_sequence_range(min_seq, max_seq)]


def profile(store: ExperimentStore, exp_id: str, exp_dir: Path, live: dict | None = None) -> dict:
    """NNI's ``ExperimentProfile``.  ``live`` is the controller's own profile (exact
    execDuration) when the experiment runs; otherwise the store's last saved values."""
    src = live or {}
    cfg = src.get("params") or store.get_meta("config") or {}
    end = src.get("endTime", store.get_meta("end_time"))
    out = {
        "id": exp_id, "params": cfg,
        "execDuration": int(round(float(src.get("execDuration", store.get_meta("exec_duration", 0.0)) or 0.0))),
        "logDir": str(exp_dir), "startTime": ms(src.get("startTime", store.get_meta("start_time"))),
        "nextSequenceId": int(src.get("nextSequenceId", store.max_sequence_id() + 1)),
        "revision": int(src.get("revision", store.get_meta("revision", 0))),
    }
    if end is not None:
        out["endTime"] = ms(end)
    return out


def export_records(store: ExperimentStore, value_as_text: bool = True) -> list[dict]:
    """``[{parameter, value, trialJobId}]`` of every trial with a final result.  NNI's
    ``export-data`` route carries ``value`` as JSON text; files written by ``experiment export``
    carry the value itself (so the JSON export is valid ``experiment import`` input)."""
    return list(iter_export_records(store, value_as_text))


def iter_export_records(store: ExperimentStore, value_as_text: bool = True) -> Iterator[dict]:
    for r in store.iter_completed_results():
        v = r["value"]
        yield {"parameter": r["parameter"], "value": json.dumps(v) if value_as_text else v,
               "trialJobId": r["trialJobId"]}


def check_import_data(data: Any, where: str = "import data") -> list[dict]:
    """Validate ``[{"parameter": {...}, "value": number | {"default": number, ...}}]`` (a value
    may also be JSON text of either, as in NNI's own export); returns it with values decoded."""
    if not isinstance(data, list):
        raise ValueError(f"{where} must be a JSON list of {{\"parameter\": {{...}}, \"value\": ...}} objects, "
                         f"got {type(data).__name__}")
    out = []
    for i, rec in enumerate(data):
        at = f"{where}[{i}]"
        if not isinstance(rec, dict):
            raise ValueError(f"{at} must be an object with 'parameter' and 'value', got {type(rec).__name__}")
        missing = [k for k in ("parameter", "value") if k not in rec]
        if missing:
            raise ValueError(f"{at} has no {' and no '.join(repr(k) for k in missing)} key; each record is "
                             f"{{\"parameter\": {{...}}, \"value\": number or {{\"default\": number}}}}")
        if not isinstance(rec["parameter"], dict):
            raise ValueError(f"{at}.parameter must be an object of hyperparameter values, "
                             f"got {type(rec['parameter']).__name__}")
        value = rec["value"]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"{at}.value must be a number or a dict with a numeric 'default', "
                                 f"got {rec['value']!r}") from None
        try:
            extract_scalar_reward(value)
        except MetricError:
            raise ValueError(f"{at}.value must be a number or a dict with a numeric 'default', "
                             f"got {rec['value']!r}") from None
        out.append(dict(rec, value=value))
    return out

