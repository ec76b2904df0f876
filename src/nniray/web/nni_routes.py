"""NNI's REST API (``/api/v1/nni``): the 27 routes of NNI 3.0's manager, same paths, shapes and
status codes, so nnictl, NNI's Python client, NNI's web UI and users' scripts keep working.

Reads go through the store's read port (:mod:`nniray.storage.trial_store`); whole-experiment
lists (``trial-jobs``, ``metric-data``, ``export-data``) are streamed batch by batch, so memory
stays bounded at any size.  Changes go to the session (the daemon's, which owns the experiment).
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from fastapi import APIRouter, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

import nniray
from nniray.cli import shapes

from . import body as bodies
from .exceptions import HttpError
from .files import FileRefused, safe_file

router = APIRouter(tags=["nni"])
PREFIX = "/api/v1/nni"
TEXT_FILES = (".log", ".txt", ".cfg", ".json", ".yml", ".yaml", ".csv")
TEXT_NAMES = ("stdout", "stderr", "trial.log", "parameter.cfg")


def session(request: Request) -> Any:
    return request.app.state.session


def ready(request: Request) -> Any:
    """The session, once its experiment has started (503 before)."""
    s = request.app.state.session
    s.require_ready()
    return s


def empty() -> Response:
    return Response(status_code=200)


CHUNK = 1 << 16


def _json_array(items: Iterator[Any]) -> Iterator[bytes]:
    """A JSON array written in ~64 KiB chunks (a big list is never built in memory, and the
    server is not handed one tiny piece per item)."""
    parts, size, sep = [b"["], 1, b""
    for item in items:
        data = sep + json.dumps(item).encode()
        parts.append(data)
        size += len(data)
        sep = b","
        if size >= CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    parts.append(b"]")
    yield b"".join(parts)


def stream_json(items: Iterator[Any]) -> StreamingResponse:
    return StreamingResponse(_json_array(items), media_type="application/json")


async def read_body(request: Request) -> Any:
    return bodies.parse(await request.body())


def _trial_or_404(s: Any, trial_id: str) -> Any:
    t = s.store.trial(trial_id)
    if t is None:
        raise HttpError(404, f"no trial {trial_id!r} in experiment {s.exp_id}")
    return t


# --------------------------------------------------------------------------------- experiment
@router.get("/version", summary="nniray's version (NNI: the manager's version string)")
def version() -> Any:
    return nniray.__version__


@router.get("/check-status", summary="NNIManagerStatus: {status, errors}")
def check_status(request: Request) -> Any:
    return session(request).check_status()


@router.get("/experiment", summary="ExperimentProfile: {params, id, execDuration, logDir, startTime, ...}")
def get_experiment(request: Request) -> Any:
    return ready(request).profile()


@router.put("/experiment", summary="Update TRIAL_CONCURRENCY | MAX_EXEC_DURATION | SEARCH_SPACE | MAX_TRIAL_NUM",
            description="The body is the experiment profile (GET /experiment) with the changed field in `params`.")
async def put_experiment(request: Request, update_type: str | None = Query(None)) -> Any:
    s = ready(request)
    body = await read_body(request)
    if not update_type:
        raise HttpError(400, "give ?update_type=TRIAL_CONCURRENCY|MAX_EXEC_DURATION|SEARCH_SPACE|MAX_TRIAL_NUM")
    if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
        raise HttpError(400, "the body must be the experiment profile (GET /experiment) with the changed "
                             "field in `params`")
    await run_in_threadpool(s.update, update_type, body["params"])
    return empty()


@router.post("/experiment", summary="NNI's launcher: start an experiment from a config (refused: one per server)")
async def post_experiment(request: Request) -> Any:
    s = ready(request)
    await read_body(request)
    raise HttpError(400, f"this server already serves experiment {s.exp_id}; start another one with "
                         f"`nniray create --config <file>`")


@router.delete("/experiment", summary="Stop the experiment and this server")
def delete_experiment(request: Request) -> Any:
    session(request).request_stop()
    return empty()


@router.get("/experiment-metadata", summary="This experiment's entry of experiments-info")
def experiment_metadata(request: Request) -> Any:
    from nniray.storage import default_registry
    s = ready(request)
    return _manifest_entry(s.exp_id, default_registry().get(s.exp_id) or {})


@router.put("/experiment/cluster-metadata", summary="NNI's training-service metadata (refused: nniray reads "
                                                    "trainingService from the config)")
async def cluster_metadata(request: Request) -> Any:
    ready(request)
    await read_body(request)
    raise HttpError(400, "nniray takes the training service from the experiment config (trainingService); "
                         "cluster-metadata is not used")


@router.post("/experiment/import-data", summary="Feed finished results [{parameter, value}] to the tuner")
async def import_data(request: Request) -> Any:
    s = ready(request)
    data = await read_body(request)
    try:
        data = shapes.check_import_data(data, "the request body")
    except ValueError as e:
        raise HttpError(400, str(e)) from None
    await run_in_threadpool(s.import_data, data)
    return empty()


@router.get("/experiment/imported-data", summary="JSON string of the imported records (each as JSON text)")
def imported_data(request: Request) -> Any:
    s = ready(request)
    return json.dumps([json.dumps(d) for d in s.store.get_meta("imported_data", [])])


@router.get("/job-statistics", summary="[{trialJobStatus, trialJobNumber}]")
def job_statistics(request: Request) -> Any:
    return shapes.job_statistics(ready(request).store)


@router.get("/experiments-info", summary="Every experiment on this machine (the registry)")
def experiments_info(request: Request) -> Any:
    from nniray.cli.locate import refreshed
    return [_manifest_entry(k, info) for k, info in sorted(refreshed().items())]


def _manifest_entry(exp_id: str, info: dict) -> dict:
    """A registry entry as an entry of NNI's experiments manifest (times in ms)."""
    out = dict(info, id=exp_id)
    for key in ("startTime", "endTime"):
        if isinstance(out.get(key), (int, float)):
            out[key] = shapes.ms(out[key])
    return out


# --------------------------------------------------------------------------------- trials
@router.get("/trial-jobs", summary="TrialJobInfo[] (streamed)")
def trial_jobs(request: Request, status: str | None = Query(None)) -> Any:
    s = ready(request)
    if status is not None:
        s.store.count((status,))  # an unknown status is a 400 before the stream starts
    return stream_json(shapes.iter_trial_jobs(s.store, s.exp_dir, status))


@router.get("/trial-jobs/{trial_id}", summary="TrialJobInfo of one trial")
def trial_job(request: Request, trial_id: str) -> Any:
    s = ready(request)
    return shapes.trial_job_info(s.store, s.exp_dir, _trial_or_404(s, trial_id))


@router.post("/trial-jobs", summary="Add a customized trial with the given parameters",
             description="Body: `{\"parameters\": {...}}` (or the parameters object itself, as NNI's UI sends). "
                         "Answers `{trialJobId, sequenceId}`.")
async def add_trial(request: Request) -> Any:
    s = ready(request)
    data = await read_body(request)
    if isinstance(data, dict) and isinstance(data.get("parameters"), dict) and len(data) == 1:
        params = data["parameters"]
    elif isinstance(data, dict):
        params = data
    else:
        raise HttpError(400, "the body must be an object: {\"parameters\": {name: value, ...}}")
    return await run_in_threadpool(s.add_customized_trial, params)


@router.delete("/trial-jobs/{trial_id}", summary="Kill a trial (USER_CANCELED)")
def kill_trial(request: Request, trial_id: str) -> Any:
    s = ready(request)
    t = _trial_or_404(s, trial_id)
    if t.status.value not in ("WAITING", "RUNNING"):
        raise HttpError(400, f"trial {trial_id} is not running (status {t.status.value})")
    s.kill_trial(trial_id)
    return empty()


@router.get("/trial-file/{trial_id}/{filename}", summary="A file of a trial's directory (trial.log, stdout, "
                                                         "stderr, parameter.cfg, ...)")
def trial_file(request: Request, trial_id: str, filename: str) -> Any:
    s = ready(request)
    _trial_or_404(s, trial_id)
    try:
        path = safe_file(s.exp_dir, f"trials/{trial_id}", filename, "trial file")
    except FileRefused as e:
        raise HttpError(404, f"trial {trial_id} has no file {filename!r} ({e})") from None
    return _file(path)


def _file(path: Any) -> FileResponse:
    text = path.name in TEXT_NAMES or path.suffix in TEXT_FILES
    return FileResponse(path, media_type="text/plain; charset=utf-8" if text else "application/octet-stream",
                        headers={"X-Content-Type-Options": "nosniff"})


# --------------------------------------------------------------------------------- metrics
def _metric_data(request: Request, trial_id: str | None, type: str | None) -> Any:
    s = ready(request)
    if trial_id is not None:
        _trial_or_404(s, trial_id)
        return shapes.metric_data(s.store, trial_id, type)
    return stream_json(shapes.iter_metric_data(s.store, None, type))


@router.get("/metric-data", summary="MetricDataRecord[] of every trial (streamed)")
@router.get("/metric-data/", include_in_schema=False)
def metric_data_all(request: Request, type: str | None = Query(None, description="PERIODICAL | FINAL")) -> Any:
    return _metric_data(request, None, type)


@router.get("/metric-data/{trial_id}", summary="MetricDataRecord[] of one trial")
def metric_data(request: Request, trial_id: str, type: str | None = Query(None)) -> Any:
    return _metric_data(request, trial_id, type)


@router.get("/metric-data-latest", summary="The latest MetricDataRecord of each trial")
@router.get("/metric-data-latest/", include_in_schema=False)
def metric_data_latest(request: Request) -> Any:
    return shapes.metric_data_latest(ready(request).store)


@router.get("/metric-data-range/{min_seq_id}/{max_seq_id}", summary="MetricDataRecord[] of the trials with "
                                                                     "sequence ids in [min, max]")
def metric_data_range(request: Request, min_seq_id: int = PathParam(...), max_seq_id: int = PathParam(...)) -> Any:
    return shapes.metric_data_range(ready(request).store, min_seq_id, max_seq_id)


@router.get("/export-data", summary="[{parameter, value (JSON text), trialJobId}] of every finished trial (streamed)")
def export_data(request: Request) -> Any:
    return stream_json(shapes.iter_export_records(ready(request).store, value_as_text=True))


# --------------------------------------------------------------------------------- tensorboard
_NO_TENSORBOARD = ("nniray does not run TensorBoard tasks; run `tensorboard --logdir <trial directory>` "
                   "(GET /trial-jobs gives each trial's logPath)")


@router.get("/tensorboard-tasks", summary="TensorBoard tasks (none: nniray runs no TensorBoard)")
def tensorboard_tasks(request: Request) -> Any:
    ready(request)
    return []


@router.delete("/tensorboard-tasks", summary="Stop every TensorBoard task (there are none)")
def stop_tensorboard_tasks(request: Request) -> Any:
    ready(request)
    return empty()


@router.post("/tensorboard", summary="Start a TensorBoard task (refused)")
async def start_tensorboard(request: Request) -> Any:
    ready(request)
    await read_body(request)
    raise HttpError(400, _NO_TENSORBOARD)


@router.get("/tensorboard/{task_id}", summary="One TensorBoard task (none exist)")
@router.put("/tensorboard/{task_id}", summary="Restart a TensorBoard task (none exist)")
@router.delete("/tensorboard/{task_id}", summary="Stop a TensorBoard task (none exist)")
def tensorboard_task(request: Request, task_id: str) -> Any:
    ready(request)
    raise HttpError(404, f"no TensorBoard task {task_id!r}: {_NO_TENSORBOARD}")


# --------------------------------------------------------------------------------- outside the prefix
extra = APIRouter()


@extra.get("/api/v1/nniray/daemon", tags=["nniray"], summary="The daemon's phase (how the CLI waits for startup)")
def daemon_info(request: Request) -> Any:
    return session(request).daemon_info()


@extra.get("/logs/{name}", tags=["nni"], summary="A file of the experiment's log folder (nniray.stdout, "
                                                 "nniray.stderr, ...)")
def log_file(request: Request, name: str) -> Any:
    s = ready(request)
    try:
        return _file(safe_file(s.exp_dir, "log", name, "log file"))
    except FileRefused as e:
        return JSONResponse({"error": str(e)}, status_code=404)
