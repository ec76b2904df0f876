"""NNI's REST shapes (``TrialJobInfo``, ``MetricDataRecord``, ``ExperimentProfile``...) built
from an experiment's SQLite store.

Used by the daemon's REST routes and by the CLI's read-only commands alike, so both show the
same data.  NNI's conventions are kept: times in milliseconds, ``hyperParameters`` as a list of
JSON strings, a metric's ``data`` as JSON text of the JSON text the trial reported (NNI's Python
client decodes it twice), ``export-data`` values as JSON text.  Nothing here imports Ray.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nniray.storage import ExperimentStore
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


def metric_record(m: dict) -> dict:
    """A stored metric row as NNI's ``MetricDataRecord``."""
    return {"timestamp": ms(m["timestamp"]), "trialJobId": m["trial_id"], "parameterId": m["parameter_id"],
            "type": m["type"], "sequence": m["sequence"], "data": json.dumps(json.dumps(m["value"]))}


def _hyper_parameters(hp: dict) -> str:
    hp = dict(hp)
    hp.setdefault("parameter_index", 0)
    return json.dumps(hp)


def trial_job_info(store: ExperimentStore, exp_dir: Path, t: dict, finals: list[dict] | None = None) -> dict:
    """A stored trial row as NNI's ``TrialJobInfo``."""
    tdir = Path(exp_dir) / "trials" / t["trial_id"]
    if finals is None:
        finals = store.metrics(t["trial_id"], "FINAL")
    info: dict[str, Any] = {
        "trialJobId": t["trial_id"], "sequenceId": t["sequence_id"], "status": t["status"],
        "hyperParameters": [_hyper_parameters(t["hyper_params"])],
        "logPath": str(tdir), "stderrPath": str(tdir / "stderr"),
        "startTime": ms(t["start_time"] or t["submit_time"]),
    }
    if t["end_time"] is not None:
        info["endTime"] = ms(t["end_time"])
    if t["message"]:
        info["message"] = t["message"]
    if finals:
        info["finalMetricData"] = [metric_record(m) for m in finals]
    return info


def trial_jobs(store: ExperimentStore, exp_dir: Path, status: str | None = None) -> list[dict]:
    finals: dict[str, list] = {}
    for m in store.metrics(mtype="FINAL"):
        finals.setdefault(m["trial_id"], []).append(m)
    return [trial_job_info(store, exp_dir, t, finals.get(t["trial_id"], [])) for t in store.list_trials(status)]


def job_statistics(store: ExperimentStore) -> list[dict]:
    return [{"trialJobStatus": k, "trialJobNumber": v} for k, v in sorted(store.status_counts().items())]


def metric_data(store: ExperimentStore, trial_id: str | None = None, mtype: str | None = None) -> list[dict]:
    return [metric_record(m) for m in store.metrics(trial_id, mtype)]


def metric_data_latest(store: ExperimentStore) -> list[dict]:
    latest: dict[str, dict] = {}
    for m in store.metrics():
        latest[m["trial_id"]] = m
    return [metric_record(m) for m in latest.values()]


def metric_data_range(store: ExperimentStore, min_seq: int, max_seq: int) -> list[dict]:
    ids = {t["trial_id"] for t in store.list_trials() if min_seq <= t["sequence_id"] <= max_seq}
    return [metric_record(m) for m in store.metrics() if m["trial_id"] in ids]


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
    out = []
    for r in store.completed_results():
        v = r["value"]
        out.append({"parameter": r["parameter"], "value": json.dumps(v) if value_as_text else v,
                    "trialJobId": r["trialJobId"]})
    return out


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

