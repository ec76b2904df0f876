"""Issue 10 new-user bug: `experiment list` decided "running" from a live PID alone, so a
recycled PID made a finished experiment look running and `stop --all` failed on it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from nniray.cli import locate


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("NNIRAY_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture()
def stranger():
    """A process that is not an nniray daemon (it stands for whoever got the pid later)."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p
    p.kill()
    p.wait()


def _write(home, entries):
    (home / "experiments.json").write_text(json.dumps(entries))


def test_process_start_time_is_read_from_proc(stranger):
    t = locate.process_start_time(stranger.pid)
    assert t is not None and abs(t - time.time()) < 60


def test_a_recycled_pid_does_not_make_an_experiment_running(home, stranger):
    old = time.time() - 3600  # the experiment started an hour before this process existed
    _write(home, {"abc": {"id": "abc", "status": "RUNNING", "pid": stranger.pid, "startTime": old, "port": 1}})
    assert not locate.is_running(locate.refreshed()["abc"])
    assert locate.refreshed()["abc"]["status"] == "STOPPED"  # and the registry says so
    r = subprocess.run([sys.executable, "-m", "nniray", "stop", "--all"], capture_output=True, text=True,
                       env=dict(os.environ, NNIRAY_HOME=str(home)), timeout=60)
    assert stranger.poll() is None  # nobody killed the stranger
    assert "Traceback" not in r.stderr


def test_the_registering_process_still_counts(home, stranger):
    entry = {"id": "x", "status": "RUNNING", "pid": stranger.pid, "startTime": time.time() + 1}
    assert locate.owner_alive(entry) and locate.is_running(entry)
    viewed = {"id": "x", "status": "VIEWED", "pid": stranger.pid, "startTime": time.time() - 3600}
    assert locate.owner_alive(viewed)  # a viewer records the experiment's old start time
    assert not locate.owner_alive({"pid": None})
