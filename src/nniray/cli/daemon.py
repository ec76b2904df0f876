"""The experiment daemon: one process that owns one experiment and serves NNI's REST API.

``nniray create`` / ``resume`` / ``view`` start it in the background (or, with
``--foreground``, run it in the terminal).  It binds the port first (so a busy port fails
at once, naming the port), starts Ray locally or attaches to ``trainingService.rayAddress``
(through the ``Experiment`` API), starts or resumes the experiment, records itself in the
registry (``pid``, ``port``, ``status``, ``logDir``) and serves until ``DELETE
/api/v1/nni/experiment`` or SIGTERM: then it stops the experiment, records the end and exits.
Like NNI's manager it keeps serving after the experiment is DONE.  A view serves a stopped
experiment read-only and never imports Ray.

Run as ``python -m nniray.cli.daemon {create,resume,view} ...``; its stdout/stderr are the
experiment's ``log/nniray.stdout`` and ``log/nniray.stderr``.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from nniray.storage import ExperimentStore, default_registry
from nniray.web import tokens

from . import shapes
from .rest import HttpError, PortInUse, RestServer

# The marker the CLI looks for in nniray.stderr to report why a daemon could not start.
ERROR_MARK = "nniray-daemon-error: "
TERMINAL = ("DONE", "STOPPED", "ERROR")
_UPDATE_FIELDS = {"TRIAL_CONCURRENCY": "trialConcurrency", "MAX_EXEC_DURATION": "maxExperimentDuration",
                  "SEARCH_SPACE": "searchSpace", "MAX_TRIAL_NUM": "maxTrialNumber"}


class Session:
    """The daemon's experiment and its lifecycle, as the REST handlers see it."""

    def __init__(self, mode: str, exp_id: str, port: int, debug: bool = False) -> None:
        self.mode = mode  # create | resume | view
        self.exp_id = exp_id
        self.port = port
        self.debug = debug
        self.phase = "starting"  # starting → ready → stopping → stopped | failed
        self.error: str | None = None
        self.exp: Any = None
        self.exp_dir: Path | None = None
        self.store: ExperimentStore | None = None
        self.stop_event = threading.Event()
        self._status_before_view: str | None = None
        self.token: str | None = None  # the server's access token, stored next to the experiment
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ start / stop
    def start(self, config: str | None = None, experiment_dir: str | None = None) -> None:
        from nniray.experiment import Experiment
        if self.mode == "create":
            from nniray.config import load_config
            cfg = load_config(config)
            exp = Experiment(cfg, id=self.exp_id)
            exp.start(self.port, debug=self.debug)
        elif self.mode == "resume":
            # Without rayAddress the experiment gets its own local Ray (training_services.local).
            exp = Experiment.resume(self.exp_id, self.port, wait_completion=False, debug=self.debug,
                                    experiment_dir=experiment_dir)
        else:
            exp = Experiment.view(self.exp_id, self.port, experiment_dir=experiment_dir)
            info = default_registry().get(self.exp_id) or {}
            self._status_before_view = info.get("status") or exp._store.get_meta("status", "STOPPED")
        self.exp = exp
        self.exp_dir = Path(exp.experiment_dir)
        if self.token is not None:  # before the registry says "ready": the CLI reads it then
            tokens.write(self.exp_dir, self.token)
        self.store = ExperimentStore(self.exp_dir, readonly=True)
        fields: dict[str, Any] = dict(pid=os.getpid(), port=self.port, logDir=str(self.exp_dir),
                                      webuiUrl=[f"http://127.0.0.1:{self.port}"])
        if self.mode == "view":
            cfg = self.store.get_meta("config") or {}
            fields.update(status="VIEWED", experimentName=cfg.get("experimentName"), platform="local",
                          startTime=self.store.get_meta("start_time"), endTime=self.store.get_meta("end_time"))
        else:
            fields.update(status=exp.get_status())
        default_registry().update(self.exp_id, **fields)
        self.phase = "ready"

    def stop(self) -> None:
        """Stop the experiment (trials are cancelled), record the end, release Ray."""
        with self._lock:
            if self.phase in ("stopping", "stopped"):
                return
            self.phase = "stopping"
        if self.exp is not None and self.mode != "view":
            try:
                self.exp.stop()
            finally:
                _shutdown_ray()
        elif self.mode == "view":
            default_registry().update(self.exp_id, status=self._status_before_view or "STOPPED")
        # No process serves it any more (a reused pid must not make it look alive).
        default_registry().update(self.exp_id, pid=None)
        self.phase = "stopped"

    def request_stop(self) -> None:
        self.stop_event.set()

    def watch(self, interval: float = 1.0) -> None:
        """Until asked to stop: mirror the experiment's status into the registry (so `nniray
        experiment list` shows RUNNING → NO_MORE_TRIAL → DONE without asking the daemon)."""
        last = None
        while not self.stop_event.wait(interval):
            if self.mode == "view":
                continue
            try:
                status = self.exp.get_status()
            except Exception as e:  # Ray hiccup: try again next tick
                logging.getLogger("nniray.daemon").warning("status poll failed: %s", e)
                continue
            if status != last:
                fields: dict[str, Any] = {"status": status}
                if status in TERMINAL:
                    fields["endTime"] = self.store.get_meta("end_time") or time.time()
                default_registry().update(self.exp_id, **fields)
                last = status

    # ------------------------------------------------------------------ used by the REST routes
    def require_ready(self) -> None:
        if self.phase == "starting":
            raise HttpError(503, f"experiment {self.exp_id} is starting; try again in a moment")
        if self.store is None:
            raise HttpError(503, f"experiment {self.exp_id} is not available ({self.error or self.phase})")

    def daemon_info(self) -> dict:
        return {"experimentId": self.exp_id, "mode": self.mode, "phase": self.phase, "error": self.error,
                "pid": os.getpid(), "port": self.port, "logDir": None if self.exp_dir is None else str(self.exp_dir)}

    def check_status(self) -> dict:
        if self.phase == "starting" or self.exp is None:
            return {"status": "ERROR" if self.phase == "failed" else "INITIALIZED",
                    "errors": [self.error] if self.error else []}
        if self.phase in ("stopping", "stopped"):
            return {"status": "STOPPING" if self.phase == "stopping" else "STOPPED", "errors": []}
        status = self.exp.get_status()
        errors = list(self.store.get_meta("errors", []))
        return {"status": status, "errors": errors}

    def profile(self) -> dict:
        live = None
        if self.mode != "view" and self.phase == "ready":
            try:
                live = self.exp.get_experiment_profile()
            except Exception:  # the store's last values are a fine answer
                live = None
        return shapes.profile(self.store, self.exp_id, self.exp_dir, live)

    def _running(self) -> None:
        if self.mode == "view":
            raise HttpError(400, f"experiment {self.exp_id} is opened with `view` (read-only); "
                                 f"`nniray resume {self.exp_id}` to change it")
        if self.phase != "ready":
            raise HttpError(400, f"experiment {self.exp_id} is {self.phase}")

    def update(self, update_type: str, params: dict) -> None:
        self._running()
        field = _UPDATE_FIELDS.get(str(update_type).upper())
        if field is None:
            raise HttpError(400, f"update_type must be one of {', '.join(_UPDATE_FIELDS)}, got {update_type!r}")
        if field not in params:
            if field == "maxExperimentDuration" and "maxExecDuration" in params:
                field_value = params["maxExecDuration"]  # NNI's v1 name
            else:
                raise HttpError(400, f"update_type {update_type} needs params.{field} in the body")
        else:
            field_value = params[field]
        from nniray.config import ConfigError
        from nniray.experiment import ExperimentError
        try:
            if field == "trialConcurrency":
                self.exp.update_trial_concurrency(_positive_int(field_value, field))
            elif field == "maxTrialNumber":
                self.exp.update_max_trial_number(_positive_int(field_value, field))
            elif field == "maxExperimentDuration":
                self.exp.update_max_experiment_duration(field_value)
            else:
                if not isinstance(field_value, dict):
                    raise HttpError(400, f"params.searchSpace must be an object, got {type(field_value).__name__}")
                self.exp.update_search_space(field_value)
        except (ConfigError, ExperimentError, ValueError) as e:
            raise HttpError(400, clean_error(e)) from None

    def import_data(self, data: list[dict]) -> None:
        self._running()
        from nniray.experiment import ExperimentError
        try:
            self.exp.import_data(data)
        except ExperimentError as e:
            raise HttpError(400, clean_error(e)) from None
        except Exception as e:  # the tuner's own refusal, raised in its actor
            raise HttpError(400, f"the tuner refused the data: {clean_error(e)}") from None

    def add_customized_trial(self, parameters: dict) -> dict:
        self._running()
        from nniray.experiment import ExperimentError
        try:
            return self.exp.add_customized_trial(parameters)
        except (ExperimentError, ValueError) as e:
            raise HttpError(400, clean_error(e)) from None

    def kill_trial(self, trial_id: str) -> None:
        self._running()
        if not self.exp.kill_trial_job(trial_id):
            raise HttpError(400, f"trial {trial_id} is not running")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def clean_error(e: BaseException) -> str:
    """One line from an error that crossed Ray (whose text carries the remote traceback): the
    innermost error's own message, keeping the field prefix the runtime put in front."""
    cause = getattr(e, "cause", None)
    if cause is not None and cause is not e:
        return clean_error(cause)
    text = _ANSI.sub("", str(e)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) <= 1:
        return text
    prefix = lines[0].split(":", 1)[0] if re.match(r"^[A-Za-z_.\[\]0-9]+: ", lines[0]) else ""
    last = re.sub(r"^[\w.]*(Error|Exception): ", "", lines[-1])
    if prefix and not last.startswith(prefix) and "ray::" in lines[0]:
        return f"{prefix}: {last}"
    return last


def _positive_int(v: Any, field: str) -> int:
    if isinstance(v, bool):
        raise HttpError(400, f"params.{field} must be a positive integer, got {v!r}")
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise HttpError(400, f"params.{field} must be a positive integer, got {v!r}") from None
    if n != v and str(n) != str(v) or n < 1:
        raise HttpError(400, f"params.{field} must be a positive integer, got {v!r}")
    return n


def _shutdown_ray() -> None:
    # Through sys.modules: a daemon that only served a view never imported Ray.
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


# ------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m nniray.cli.daemon", description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=("create", "resume", "view"))
    p.add_argument("--id", required=True, help="experiment id")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--config", help="experiment YAML (create)")
    p.add_argument("--experiment-dir", help="experiment folder (resume/view)")
    p.add_argument("--debug", action="store_true")
    return p.parse_args(argv)


def serve(args: argparse.Namespace, on_ready: Any = None, until_terminal: bool = False,
          raise_errors: bool = False) -> int:
    """Run the daemon in this process; returns the exit code.  ``on_ready(session)`` runs once
    the experiment has started (the foreground CLI shows progress there); with
    ``until_terminal`` the experiment is stopped once it ends (DONE/ERROR).  With
    ``raise_errors`` a failed start raises :class:`CliError` (one line for the terminal)
    instead of writing the marked line a background CLI looks for."""
    from .errors import CliError
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="[%(asctime)s] %(levelname)s (%(name)s) %(message)s")
    session = Session(args.mode, args.id, args.port, args.debug)
    # The experiment's token: mutating routes need it; stored next to the experiment (mode
    # 0600) once its directory is known, where the CLI finds it.
    token = session.token = tokens.generate()
    try:
        server = RestServer(session, args.port, token=token, readonly=args.mode == "view")
    except PortInUse as e:
        if raise_errors:
            raise CliError(str(e)) from None
        print(ERROR_MARK + str(e), file=sys.stderr, flush=True)
        return 1
    server.start()

    def on_signal(signum: int, frame: Any) -> None:
        session.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        session.start(args.config, args.experiment_dir)
    except BaseException as e:  # report why in one line; the traceback helps when it is our bug
        session.phase, session.error = "failed", _one_line(e)
        if not _is_user_error(e) and (not raise_errors or os.environ.get("NNIRAY_DEBUG")):
            traceback.print_exc()
        if not raise_errors:
            print(ERROR_MARK + session.error, file=sys.stderr, flush=True)
        if args.mode != "view":
            _shutdown_ray()
            if args.mode == "create":
                default_registry().remove(args.id)
        server.close()
        if raise_errors:
            raise CliError(session.error) from None
        return 1
    # ray.init may have installed its own handlers: ours decide how this process ends.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    print(f"nniray daemon: experiment {args.id} ({args.mode}) served at http://127.0.0.1:{args.port}"
          f"{'/api/v1/nni'}", flush=True)
    if on_ready is not None:
        threading.Thread(target=on_ready, args=(session,), daemon=True).start()
    if until_terminal:
        threading.Thread(target=_stop_when_terminal, args=(session,), daemon=True).start()
    try:
        session.watch()
    finally:
        try:
            session.stop()
        finally:
            server.close()
    print(f"nniray daemon: experiment {args.id} stopped", flush=True)
    return 0


def _stop_when_terminal(session: Session) -> None:
    while not session.stop_event.wait(0.5):
        try:
            if session.exp.get_status() in TERMINAL:
                session.request_stop()
        except Exception:
            pass


def _is_user_error(e: BaseException) -> bool:
    from nniray.config import ConfigError
    from nniray.experiment import ExperimentError

    from .errors import CliError
    return isinstance(e, (ConfigError, ExperimentError, CliError, FileNotFoundError, KeyboardInterrupt, SystemExit))


def _one_line(e: BaseException) -> str:
    if isinstance(e, (SystemExit, KeyboardInterrupt)):  # Ray's own SIGTERM handler, during ray.init
        return "stopped by a signal while starting"
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if _is_user_error(e) else f"{type(e).__name__}: {msg}"


def main(argv: list[str] | None = None) -> int:
    return serve(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
