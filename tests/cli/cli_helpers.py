"""Helpers for the CLI tests: a private NNIRAY_HOME, `nniray` run as a real subprocess, a tiny
command-trial experiment, and teardown that stops every daemon a test started (so no Ray
cluster is left running)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path


TRIAL = textwrap.dedent("""\
    import sys, time
    import nniray as nni
    p = nni.get_next_parameter()
    for i in range(3):
        nni.report_intermediate_result(p["x"] * i)
    print("hello from", nni.get_trial_id())
    print("a line on stderr", file=sys.stderr)
    time.sleep(float(p.get("sleep", 0)))
    nni.report_final_result({"default": p["x"], "other": 1})
    """)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_experiment(folder: Path, name: str = "clitest", max_trials: int = 4, concurrency: int = 2,
                     sleep: float = 0.0, extra: str = "") -> Path:
    """A tiny YAML command-trial experiment in ``folder`` (working directory inside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trial.py").write_text(TRIAL)
    space = {"x": {"_type": "uniform", "_value": [0, 1]}, "sleep": {"_type": "choice", "_value": [sleep]}}
    cfg = folder / "config.yml"
    cfg.write_text(textwrap.dedent(f"""\
        experimentName: {name}
        searchSpace: {json.dumps(space)}
        trialCommand: {sys.executable} trial.py
        trialCodeDirectory: .
        trialConcurrency: {concurrency}
        maxTrialNumber: {max_trials}
        tuner:
          name: Random
          classArgs: {{seed: 7}}
        experimentWorkingDirectory: {folder / 'exps'}
        trainingService:
          platform: local
        """) + extra)
    return cfg


class Cli:
    """Runs ``python -m nniray ...`` with this test's NNIRAY_HOME."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd
        self.env = dict(os.environ, NNIRAY_HOME=str(home), RAY_USAGE_STATS_ENABLED="0", COLUMNS="240")
        self.env.pop("NNIRAY_DEBUG", None)

    def __call__(self, *args: str, timeout: float = 280, input: str | None = None) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "nniray", *args], cwd=self.cwd, env=self.env,
                           capture_output=True, text=True, timeout=timeout, input=input)
        self.learn_tokens()
        return r

    def learn_tokens(self) -> None:
        """Remember the token of each experiment served now, so rest() sends it as the CLI does."""
        from nniray.web import tokens
        for info in self.registry().values():
            token = tokens.for_port(info.get("port"), self.home) if info.get("port") else None
            if token:
                TOKENS[info["port"]] = token

    def registry(self) -> dict:
        f = self.home / "experiments.json"
        return json.loads(f.read_text()) if f.exists() and f.stat().st_size else {}

    def stop_all(self) -> None:
        """Teardown: SIGTERM every live daemon (it stops its experiment and Ray), then SIGKILL."""
        pids = [v.get("pid") for v in self.registry().values() if v.get("pid")]
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.time() + 90
        while any(_alive(p) for p in pids) and time.time() < deadline:
            time.sleep(0.3)
        for pid in pids:
            _signal(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


TOKENS: dict[int, str] = {}  # port -> the experiment's token (learnt by Cli calls)


def rest(port: int, method: str, path: str, body=None, token: str | None = None) -> tuple[int, object]:
    """One REST call with the experiment's token, as the CLI sends it; (status, decoded JSON body
    or raw text)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    token = token or TOKENS.get(port)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/nni{path}", data=data, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            code, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        code, text = e.code, e.read().decode()
    try:
        return code, (json.loads(text) if text else None)
    except json.JSONDecodeError:
        return code, text


def wait_status(port: int, statuses: tuple, timeout: float = 120) -> str:
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        _, body = rest(port, "GET", "/check-status")
        status = body["status"]
        if status in statuses:
            return status
        time.sleep(0.3)
    raise AssertionError(f"status stayed {status}, wanted one of {statuses}")
