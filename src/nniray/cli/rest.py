"""NNI's REST API (``/api/v1/nni/...``) over the stdlib's ``ThreadingHTTPServer``.

Routes and shapes follow NNI's manager (see ``docs/cli.md``), so the web UI and NNI's own
clients can talk to an nniray experiment.  Reads come from the experiment's SQLite store;
changes go to the :class:`~nniray.cli.daemon.Session`, which owns the experiment.  Errors are
``{"error": message}``: 400 for bad input, 404 for an unknown trial or route, 500 otherwise.
The server binds 127.0.0.1 only.
"""
from __future__ import annotations

import json
import logging
import re
import socketserver
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from . import shapes

PREFIX = "/api/v1/nni"
log = logging.getLogger("nniray.rest")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class PortInUse(OSError):
    """The port cannot be bound; the message names it and the ``--port`` fix."""


Route = tuple[str, "re.Pattern[str]", Callable[..., Any]]


def _routes() -> list[Route]:
    table = [
        ("GET", r"/version", _version),
        ("GET", r"/check-status", _check_status),
        ("GET", r"/experiment", _get_experiment),
        ("PUT", r"/experiment", _put_experiment),
        ("DELETE", r"/experiment", _delete_experiment),
        ("GET", r"/experiment-metadata", _experiment_metadata),
        ("POST", r"/experiment/import-data", _import_data),
        ("GET", r"/experiment/imported-data", _imported_data),
        ("GET", r"/job-statistics", _job_statistics),
        ("GET", r"/trial-jobs", _trial_jobs),
        ("GET", r"/trial-jobs/(?P<trial_id>[^/]+)", _trial_job),
        ("DELETE", r"/trial-jobs/(?P<trial_id>[^/]+)", _kill_trial),
        ("GET", r"/metric-data/?", _metric_data),
        ("GET", r"/metric-data/(?P<trial_id>[^/]+)", _metric_data),
        ("GET", r"/metric-data-latest/?", _metric_data_latest),
        ("GET", r"/metric-data-range/(?P<lo>-?\d+)/(?P<hi>-?\d+)", _metric_data_range),
        ("GET", r"/export-data", _export_data),
        ("GET", r"/experiments-info", _experiments_info),
        ("GET", r"/trial-file/(?P<trial_id>[^/]+)/(?P<filename>[^/]+)", _trial_file),
    ]
    return [(m, re.compile(f"^{p}$"), f) for m, p, f in table]


# Served only while the experiment has been started; until then these answer 503.
_NEEDS_READY = {"_version": False, "_check_status": False, "_delete_experiment": False, "_experiments_info": False}


# ------------------------------------------------------------------------------------- handlers
def _version(s: Any, q: dict, body: Any) -> Any:
    import nniray
    return nniray.__version__


def _check_status(s: Any, q: dict, body: Any) -> Any:
    return s.check_status()


def _get_experiment(s: Any, q: dict, body: Any) -> Any:
    return s.profile()


def _put_experiment(s: Any, q: dict, body: Any) -> Any:
    update_type = (q.get("update_type") or [None])[0]
    if not update_type:
        raise HttpError(400, "give ?update_type=TRIAL_CONCURRENCY|MAX_EXEC_DURATION|SEARCH_SPACE|MAX_TRIAL_NUM")
    if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
        raise HttpError(400, "the body must be the experiment profile (GET /experiment) with the changed "
                             "field in `params`")
    s.update(update_type, body["params"])
    return None


def _delete_experiment(s: Any, q: dict, body: Any) -> Any:
    s.request_stop()
    return None


def _manifest_entry(exp_id: str, info: dict) -> dict:
    """A registry entry as an entry of NNI's experiments manifest (times in ms)."""
    out = dict(info, id=exp_id)
    for key in ("startTime", "endTime"):
        if isinstance(out.get(key), (int, float)):
            out[key] = shapes.ms(out[key])
    return out


def _experiment_metadata(s: Any, q: dict, body: Any) -> Any:
    from nniray.storage import default_registry
    return _manifest_entry(s.exp_id, default_registry().get(s.exp_id) or {})


def _import_data(s: Any, q: dict, body: Any) -> Any:
    try:
        data = shapes.check_import_data(body, "the request body")
    except ValueError as e:
        raise HttpError(400, str(e)) from None
    s.import_data(data)
    return None


def _imported_data(s: Any, q: dict, body: Any) -> Any:
    return json.dumps([json.dumps(d) for d in s.store.get_meta("imported_data", [])])


def _job_statistics(s: Any, q: dict, body: Any) -> Any:
    return shapes.job_statistics(s.store)


def _trial_jobs(s: Any, q: dict, body: Any) -> Any:
    status = (q.get("status") or [None])[0]
    return shapes.trial_jobs(s.store, s.exp_dir, status)


def _trial_job(s: Any, q: dict, body: Any, trial_id: str) -> Any:
    t = s.store.get_trial(trial_id)
    if t is None:
        raise HttpError(404, f"no trial {trial_id!r} in experiment {s.exp_id}")
    return shapes.trial_job_info(s.store, s.exp_dir, t)


def _kill_trial(s: Any, q: dict, body: Any, trial_id: str) -> Any:
    t = s.store.get_trial(trial_id)
    if t is None:
        raise HttpError(404, f"no trial {trial_id!r} in experiment {s.exp_id}")
    if t["status"] not in ("WAITING", "RUNNING"):
        raise HttpError(400, f"trial {trial_id} is not running (status {t['status']})")
    s.kill_trial(trial_id)
    return None


def _metric_data(s: Any, q: dict, body: Any, trial_id: str | None = None) -> Any:
    mtype = (q.get("type") or [None])[0]
    if trial_id is not None and s.store.get_trial(trial_id) is None:
        raise HttpError(404, f"no trial {trial_id!r} in experiment {s.exp_id}")
    return shapes.metric_data(s.store, trial_id, mtype)


def _metric_data_latest(s: Any, q: dict, body: Any) -> Any:
    return shapes.metric_data_latest(s.store)


def _metric_data_range(s: Any, q: dict, body: Any, lo: str, hi: str) -> Any:
    return shapes.metric_data_range(s.store, int(lo), int(hi))


def _export_data(s: Any, q: dict, body: Any) -> Any:
    return shapes.export_records(s.store, value_as_text=True)


def _experiments_info(s: Any, q: dict, body: Any) -> Any:
    from .locate import refreshed
    return [_manifest_entry(k, info) for k, info in sorted(refreshed().items())]


def _trial_file(s: Any, q: dict, body: Any, trial_id: str, filename: str) -> Any:
    if s.store.get_trial(trial_id) is None:
        raise HttpError(404, f"no trial {trial_id!r} in experiment {s.exp_id}")
    tdir = (Path(s.exp_dir) / "trials" / trial_id).resolve()
    path = (tdir / filename).resolve()
    if path.parent != tdir or not path.is_file():
        raise HttpError(404, f"trial {trial_id} has no file {filename!r}")
    return _Raw(path.read_bytes())


def _log_file(s: Any, name: str) -> "_Raw":
    """``/logs/<name>``: a file of the experiment's ``log`` folder (nnimanager.log, nniray.stderr...)."""
    ldir = (Path(s.exp_dir) / "log").resolve()
    path = (ldir / urllib.parse.unquote(name)).resolve()
    if path.parent != ldir or not path.is_file():
        raise HttpError(404, f"no log file {name!r}")
    return _Raw(path.read_bytes())


class _Raw:
    """A non-JSON reply body (trial files)."""

    def __init__(self, data: bytes) -> None:
        self.data = data


ROUTES = _routes()


# ------------------------------------------------------------------------------------- server
class _Handler(BaseHTTPRequestHandler):
    server_version = "nniray"
    session: Any = None  # set on the subclass made by make_server

    def log_message(self, fmt: str, *args: Any) -> None:  # keep nniray.stderr for real problems
        log.debug("%s - %s", self.address_string(), fmt % args)

    def _reply(self, status: int, payload: Any) -> None:
        if isinstance(payload, _Raw):
            data, ctype = payload.data, "application/octet-stream"
        else:
            data, ctype = (b"" if payload is None else json.dumps(payload).encode()), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Headers", "Origin, X-Requested-With, Content-Type, Accept")
        self.send_header("Access-Control-Allow-Methods", "PUT,POST,GET,DELETE,OPTIONS")
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        path = url.path
        try:
            if path == "/api/v1/nniray/daemon":  # nniray's own: how the CLI waits for startup
                if method != "GET":
                    raise HttpError(405, f"{method} is not allowed on {path}")
                return self._reply(200, self.session.daemon_info())
            if path.startswith("/logs/") and method == "GET":  # the web UI's log links
                self.session.require_ready()
                return self._reply(200, _log_file(self.session, path[len("/logs/"):]))
            if not path.startswith(PREFIX):
                raise HttpError(404, f"no route {method} {path}; the REST API is under {PREFIX}")
            sub = path[len(PREFIX):] or "/"
            allowed = []
            for m, pattern, fn in ROUTES:
                match = pattern.match(sub)
                if not match:
                    continue
                if m != method:
                    allowed.append(m)
                    continue
                if _NEEDS_READY.get(fn.__name__, True):
                    self.session.require_ready()
                body = self._body() if method in ("PUT", "POST") else None
                return self._reply(200, fn(self.session, query, body, **match.groupdict()))
            if allowed:
                raise HttpError(405, f"{method} is not allowed on {path} (allowed: {', '.join(allowed)})")
            raise HttpError(404, f"no route {method} {path}")
        except HttpError as e:
            self._reply(e.status, {"error": str(e)})
        except ValueError as e:
            self._reply(400, {"error": str(e)})
        except LookupError as e:
            self._reply(404, {"error": str(e).strip("'\"")})
        except Exception as e:  # the server must outlive any one bad request
            log.exception("%s %s failed", method, self.path)
            self._reply(500, {"error": f"{type(e).__name__}: {e}"})

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise HttpError(400, f"the request body is not valid JSON ({e})") from None

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_OPTIONS(self) -> None:  # CORS preflight from a web UI on another origin
        self._reply(200, None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall for seconds on a
        # machine without DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class RestServer:
    """Binds at construction (so a busy port fails before anything else starts); serves in a
    background thread after :meth:`start`."""

    def __init__(self, session: Any, port: int, host: str = "127.0.0.1") -> None:
        handler = type("Handler", (_Handler,), {"session": session})
        try:
            self.httpd = _Server((host, port), handler)
        except OSError as e:
            raise PortInUse(f"port {port} is not available ({e.strerror or e}): another experiment or program "
                            f"uses it; stop it (`nniray stop --port {port}`) or choose another with --port") from None
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="nniray-rest", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
        self.httpd.server_close()
