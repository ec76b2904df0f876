"""``create``, ``resume``, ``view`` and ``stop``: starting and ending experiment daemons."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nniray.storage import ExperimentStore, default_registry

from nniray.web import tokens

from . import client, locate
from .console import info
from .daemon import ERROR_MARK
from .errors import CliError

STARTUP_TIMEOUT = 300.0  # Ray's start on a loaded machine plus the first experiment
STOP_TIMEOUT = 120.0

CHEAT_SHEET = """\
------------------------------------------------------------------------------------
The experiment id is {id}
The Web UI urls are: {url}
The REST API is at:  {url}/api/v1/nni
------------------------------------------------------------------------------------

You can use these commands to get more information about the experiment
------------------------------------------------------------------------------------
         commands                       description
1. nniray experiment show        show the information of experiments
2. nniray trial ls               list all of trial jobs
3. nniray top                    monitor the status of running experiments
4. nniray log stderr             show stderr log content
5. nniray log stdout             show stdout log content
6. nniray stop                   stop an experiment
7. nniray trial kill             kill a trial job by id
8. nniray --help                 get help information about nniray
------------------------------------------------------------------------------------"""


def new_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    data = default_registry().all()
    while True:
        exp_id = "".join(secrets.choice(alphabet) for _ in range(8))
        if exp_id not in data:
            return exp_id


def check_port(port: int) -> None:
    """Fail before starting anything when the port is taken (the daemon checks again)."""
    owner = [k for k, v in locate.refreshed().items() if locate.is_running(v) and str(v.get("port")) == str(port)]
    if owner:
        raise CliError(f"port {port} is used by running experiment {owner[0]}; stop it first "
                       f"(`nniray stop {owner[0]}`) or choose another port with --port")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise CliError(f"port {port} is not available ({e.strerror or e}); choose another with --port") from None


def _daemon_argv(mode: str, exp_id: str, port: int, config: str | None, experiment_dir: str | None,
                 debug: bool) -> list[str]:
    argv = [mode, "--id", exp_id, "--port", str(port)]
    if config:
        argv += ["--config", config]
    if experiment_dir:
        argv += ["--experiment-dir", experiment_dir]
    if debug:
        argv.append("--debug")
    return argv


def spawn(argv: list[str], log_dir: Path) -> subprocess.Popen:
    """Start the daemon detached from this terminal (its own session), logging to
    ``log/nniray.stdout|stderr``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_dir / "nniray.stdout", "ab")
    err = open(log_dir / "nniray.stderr", "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "nniray.cli.daemon", *argv], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True, close_fds=True)
    finally:
        out.close()
        err.close()


def wait_ready(proc: subprocess.Popen, exp_id: str, port: int, log_dir: Path) -> dict:
    """Until the daemon says the experiment runs (or it exits: then its one-line reason)."""
    deadline = time.time() + STARTUP_TIMEOUT
    while time.time() < deadline:
        code = proc.poll()
        if code is not None:
            raise CliError(_startup_error(log_dir, code))
        try:
            d = client.get(port, "/daemon", prefix="/api/v1/nniray", timeout=5)
        except CliError:
            d = None
        if d is not None:
            if d.get("experimentId") != exp_id:
                raise CliError(f"port {port} is served by another experiment ({d.get('experimentId')}); "
                               f"choose another port with --port")
            if d.get("phase") == "ready":
                return d
            if d.get("phase") == "failed":
                proc.wait(timeout=60)
                raise CliError(d.get("error") or _startup_error(log_dir, proc.returncode))
        time.sleep(0.3)
    proc.terminate()
    raise CliError(f"the experiment did not start within {STARTUP_TIMEOUT:.0f}s; see {log_dir / 'nniray.stderr'}")


def _startup_error(log_dir: Path, code: int) -> str:
    try:
        lines = (log_dir / "nniray.stderr").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    marked = [ln[len(ERROR_MARK):] for ln in lines if ln.startswith(ERROR_MARK)]
    if marked:
        return marked[-1]
    return f"the experiment daemon exited with code {code}; see {log_dir / 'nniray.stderr'}"


def _print_started(exp_id: str, port: int) -> None:
    info("Successfully started Restful server!")
    info("Starting experiment...")
    info("Successfully started experiment!")
    print(CHEAT_SHEET.format(id=exp_id, url=client.base_url(port)), flush=True)
    token = tokens.for_port(port)  # the experiment's access token: changes from the web UI need it
    if token:
        print(f"Web UI with its access token (changes need it): {client.base_url(port)}/?token={token}", flush=True)


def _run_foreground(argv: list[str]) -> int:
    from nniray.experiment.progress import watch

    from . import daemon

    def show(session: Any) -> None:
        _print_started(session.exp_id, session.port)
        if session.mode != "view":
            watch(session.exp)
            session.request_stop()

    return daemon.serve(daemon.parse_args(argv), on_ready=show, raise_errors=True)


def _launch(mode: str, exp_id: str, port: int, log_dir: Path, config: str | None = None,
            experiment_dir: str | None = None, debug: bool = False, foreground: bool = False) -> int:
    argv = _daemon_argv(mode, exp_id, port, config, experiment_dir, debug)
    info("Starting restful server...")
    if foreground:
        return _run_foreground(argv)
    proc = spawn(argv, log_dir)
    try:
        wait_ready(proc, exp_id, port, log_dir)
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)  # the daemon stops the experiment once it has started
        raise CliError(f"interrupted: experiment {exp_id} is being stopped") from None
    _print_started(exp_id, port)
    return 0


# ------------------------------------------------------------------------------------- commands
def create(args: Any) -> int:
    from nniray.config import ConfigError, load_config
    from nniray.experiment.experiment import validate_experiment
    try:
        cfg = load_config(args.config)
        cfg.check_runnable()
        validate_experiment(cfg)
    except ConfigError as e:
        msg = str(e)
        raise CliError(msg if args.config in msg else f"{args.config}: {msg}") from None
    if cfg.trial_command is None:
        raise CliError(f"{args.config}: trialCommand is required")
    check_port(args.port)
    exp_id = new_id()
    log_dir = Path(cfg.experiment_working_directory) / exp_id / "log"
    return _launch("create", exp_id, args.port, log_dir, config=str(Path(args.config).resolve()),
                   debug=args.debug, foreground=args.foreground)


def resume(args: Any) -> int:
    exp_id = _known_id(args.id, args.experiment_dir)
    exp_dir = locate.experiment_dir(exp_id, args.experiment_dir)
    info_ = locate.refreshed().get(exp_id) or {}
    if locate.is_running(info_):
        raise CliError(f"experiment {exp_id} is already running (port {info_.get('port')}); "
                       f"`nniray stop {exp_id}` first")
    store = ExperimentStore(exp_dir, readonly=True)
    cfg = store.get_meta("config") or {}
    store.close()
    if not cfg.get("trialCommand"):
        raise CliError(f"experiment {exp_id} runs a Python function trial; resume it from Python "
                       f"(Experiment.resume('{exp_id}', trial_function=...))")
    check_port(args.port)
    return _launch("resume", exp_id, args.port, exp_dir / "log", experiment_dir=str(exp_dir),
                   debug=args.debug, foreground=args.foreground)


def view(args: Any) -> int:
    exp_id = _known_id(args.id, args.experiment_dir)
    exp_dir = locate.experiment_dir(exp_id, args.experiment_dir)
    info_ = locate.refreshed().get(exp_id) or {}
    if locate.is_running(info_):
        raise CliError(f"experiment {exp_id} is running (port {info_.get('port')}); its REST API is "
                       f"{client.base_url(info_.get('port'))}, `view` is for stopped experiments")
    check_port(args.port)
    return _launch("view", exp_id, args.port, exp_dir / "log", experiment_dir=str(exp_dir))


def _known_id(exp_id: str, experiment_dir: str | None) -> str:
    """``resume``/``view`` need an id; with ``--experiment_dir`` it need not be registered."""
    if experiment_dir:
        return exp_id
    return locate.resolve(exp_id)


def stop(args: Any) -> int:
    ids = locate.resolve_for_stop(args.id, args.port, args.all)
    data = default_registry().all()
    for exp_id in ids:
        info(f"Stopping experiment {exp_id}")
        stop_one(exp_id, data[exp_id])
        info("Stop experiment success.")
    return 0


def stop_one(exp_id: str, entry: dict) -> None:
    pid, port = entry.get("pid"), entry.get("port")
    if not port:
        raise CliError(f"experiment {exp_id} was started from Python (pid {pid}), not by `nniray create`; "
                       f"stop it from its script (experiment.stop())")
    try:
        client.delete(port, "/experiment", timeout=30)
    except CliError:
        # The REST server does not answer: ask the process directly.
        # (only the process that registered it: a recycled pid belongs to someone else)
        if locate.owner_alive(entry):
            os.kill(int(pid), signal.SIGTERM)
    deadline = time.time() + STOP_TIMEOUT
    while locate.owner_alive(entry) and time.time() < deadline:
        time.sleep(0.2)
    if locate.owner_alive(entry):
        os.kill(int(pid), signal.SIGKILL)
        default_registry().update(exp_id, status="STOPPED", endTime=time.time())
        raise CliError(f"experiment {exp_id} did not stop within {STOP_TIMEOUT:.0f}s and was killed "
                       f"(pid {pid}); its Ray processes may need `ray stop`")
    cur = default_registry().get(exp_id) or {}
    if cur.get("status") not in ("STOPPED", "DONE", "ERROR"):
        default_registry().update(exp_id, status="STOPPED", endTime=time.time())
