"""The web UI's routes (documented for scripts too): a summary, trials by page with sort and
filter, one trial's row and metrics, downsampled series, and a changes feed (server-sent
events).  Every answer is bounded: pages, point budgets, and batches of changes.
Times are milliseconds since the epoch and durations seconds, as in WEB_CONTRACT.md.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from nniray.cli import shapes
from nniray.storage import OptimizeMode, QueryError, SortOrder, TrialQuery, TrialRecord, TrialStatus

from .exceptions import HttpError
from .nni_routes import ready

router = APIRouter(tags=["ui"])
EVENT_INTERVAL = 0.5  # seconds between two looks at the store for the changes feed
SUMMARY_EVERY = 2  # a summary event every this many intervals (when it changed)
EVENT_BATCH = 1000  # at most this many trials / metrics per event


def trial_row(t: TrialRecord) -> dict:
    return {"trialJobId": t.trial_id, "sequenceId": t.sequence_id, "status": t.status.value,
            "startTime": shapes.ms(t.start_time), "endTime": shapes.ms(t.end_time), "duration": t.duration,
            "parameters": t.parameters, "final": t.final_value,
            "finalDict": t.final if isinstance(t.final, dict) else None,
            "message": t.message, "node": t.node, "intermediateCount": t.intermediate_count}


def _mode(s: Any) -> OptimizeMode | None:
    cfg = s.store.get_meta("config") or {}
    mode = shapes.optimize_mode(cfg)
    return OptimizeMode(mode) if mode in ("maximize", "minimize") else None


def summary(s: Any) -> dict:
    status = s.check_status()
    prof = s.profile()
    params = prof.get("params") or {}
    counts = {st.value: 0 for st in TrialStatus}
    for st, n in s.store.counts_by_status().items():
        counts[st.value] = n
    mode = _mode(s)
    best = s.store.best_trial(mode or OptimizeMode.MAXIMIZE)
    return {"id": s.exp_id, "experimentName": params.get("experimentName"), "status": status.get("status"),
            "errors": list(status.get("errors") or []), "startTime": prof.get("startTime"),
            "endTime": prof.get("endTime"), "execDuration": prof.get("execDuration"),
            "maxExperimentDuration": _seconds(params.get("maxExperimentDuration")),
            "trialConcurrency": params.get("trialConcurrency"), "maxTrialNumber": params.get("maxTrialNumber"),
            "optimizeMode": None if mode is None else mode.value, "counts": counts, "total": sum(counts.values()),
            "best": None if best is None else {"trialJobId": best.trial_id, "sequenceId": best.sequence_id,
                                               "value": best.final_value},
            "readonly": bool(getattr(s, "mode", None) == "view")}


def _seconds(v: Any) -> float | None:
    if v is None:
        return None
    try:
        from nniray.config import parse_duration
        return float(parse_duration(v, "maxExperimentDuration"))
    except Exception:
        return None


@router.get("/summary", summary="The experiment at a glance (status, limits, counts by status, best trial)")
def get_summary(request: Request) -> Any:
    return summary(ready(request))


@router.get("/trials/page", summary="Trials by page, sorted and filtered in SQLite",
            description="sort: sequenceId|trialJobId|status|startTime|endTime|duration|final|final.<key>|"
                        "param.<name>; filter with status=S1,S2, search=<id substring or sequence id> and "
                        "param.<name>=<JSON value>.")
def trials_page(request: Request, offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500),
                sort: str = Query("sequenceId"), order: SortOrder = Query(SortOrder.ASC),
                status: str | None = Query(None), search: str | None = Query(None, max_length=200)) -> Any:
    s = ready(request)
    params: dict[str, Any] = {}
    for key, raw in request.query_params.multi_items():
        if key.startswith("param."):
            try:
                params[key[len("param."):]] = json.loads(raw)
            except ValueError:
                params[key[len("param."):]] = raw  # a bare string is a string value
    statuses = tuple(x for x in (status or "").split(",") if x)
    page = s.store.trials_page(TrialQuery(offset=offset, limit=limit, sort=sort, order=order,
                                          statuses=statuses, search=search or None, params=params))
    return {"total": page.total, "offset": page.offset, "limit": page.limit,
            "columns": {"params": page.param_names, "final": page.final_keys},
            "items": [trial_row(t) for t in page.items]}


@router.get("/trials/finals", summary="Final value of each trial, thinned to maxPoints (for plots)")
def trials_finals(request: Request, maxPoints: int = Query(5000, ge=1, le=100000)) -> Any:
    s = ready(request)
    total, trials = s.store.finals(maxPoints)
    return {"downsampled": len(trials) < total, "total": total,
            "points": [[t.sequence_id, t.final_value, shapes.ms(t.end_time), t.duration, t.trial_id, t.status.value]
                       for t in trials]}


@router.get("/trials/{trial_id}/row", summary="One trial's row (as in a page)")
def trial_row_route(request: Request, trial_id: str) -> Any:
    s = ready(request)
    t = s.store.trial(trial_id)
    if t is None:
        raise HttpError(404, f"no trial {trial_id!r} in experiment {s.exp_id}")
    return trial_row(t)


@router.get("/trials/{trial_id}/metrics", summary="One trial's metrics [{type, sequence, value, timestamp}]")
def trial_metrics(request: Request, trial_id: str, type: str | None = Query(None, description="PERIODICAL | FINAL")) -> Any:
    s = ready(request)
    if s.store.trial(trial_id) is None:
        raise HttpError(404, f"no trial {trial_id!r} in experiment {s.exp_id}")
    if type is not None and type not in ("PERIODICAL", "FINAL"):
        raise QueryError(f"type must be PERIODICAL or FINAL, got {type!r}")
    return [{"type": m.type.value, "sequence": m.sequence, "value": m.value, "timestamp": shapes.ms(m.timestamp)}
            for m in s.store.trial_metrics(trial_id, type)]


@router.get("/metrics/series", summary="Intermediate results of many trials, thinned (for curves)")
def metric_series(request: Request, trials: str = Query("all"), maxPoints: int = Query(200, ge=2, le=10000),
                  maxTrials: int = Query(200, ge=1, le=2000), key: str = Query("default", max_length=200)) -> Any:
    s = ready(request)
    if trials == "all":
        total = s.store.count()
        ids = [t.trial_id for t in s.store.trials_page(TrialQuery(limit=min(maxTrials, 500),
                                                                  sort="sequenceId", order=SortOrder.DESC)).items]
    else:
        wanted = [x for x in trials.split(",") if x]
        total = len(wanted)
        ids = wanted[:maxTrials]
    series = s.store.metric_series(ids, maxPoints, key)
    downsampled = len(ids) < total or any(
        len(series.get(i, ())) >= maxPoints for i in ids)
    return {"downsampled": downsampled, "totalTrials": total,
            "series": {tid: [[seq, v] for seq, v in pts] for tid, pts in series.items()}}


# --------------------------------------------------------------------------------- changes feed
def _parse_cursor(since: str | None, s: Any) -> tuple[int, int]:
    if not since:
        return s.store.cursors()
    try:
        t, m = since.split("-", 1)
        return int(t), int(m)
    except ValueError:
        raise QueryError(f"since must be a cursor '<trials>-<metrics>' from an event id, got {since!r}") from None


def _event(name: str, data: Any, cursor: tuple[int, int]) -> bytes:
    return f"id: {cursor[0]}-{cursor[1]}\nevent: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def _feed(request: Request, s: Any, cursor: tuple[int, int]) -> AsyncIterator[bytes]:
    last_summary = None
    tick = 0
    yield b"retry: 2000\n\n"
    while not getattr(request.app.state, "closing", False):
        if tick % SUMMARY_EVERY == 0:
            summ = await run_in_threadpool(summary, s)
            if summ != last_summary:
                last_summary = summ
                yield _event("summary", summ, cursor)
        tick += 1
        while True:  # drain what accumulated, in bounded batches
            ch = await run_in_threadpool(s.store.changes_since, cursor[0], cursor[1], EVENT_BATCH)
            cursor = (ch.trial_cursor, ch.metric_cursor)
            if ch.trials:
                yield _event("trials", [trial_row(t) for t in ch.trials], cursor)
            if ch.metrics:
                yield _event("metrics", [{"trialJobId": m.trial_id, "type": m.type.value, "sequence": m.sequence,
                                          "value": m.value} for m in ch.metrics], cursor)
            if len(ch.trials) < EVENT_BATCH and len(ch.metrics) < EVENT_BATCH:
                break
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_INTERVAL)


@router.get("/events", summary="Changes feed (text/event-stream): summary, trials and metrics events",
            description="Each event has an `id:` cursor; reconnect with ?since=<last id>. Without `since` the "
                        "feed starts at the present (a summary first).")
def events(request: Request, since: str | None = Query(None, max_length=64)) -> Any:
    s = ready(request)
    cursor = _parse_cursor(since, s)
    return StreamingResponse(_feed(request, s, cursor), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
