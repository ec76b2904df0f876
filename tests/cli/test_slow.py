"""Longer CLI scenarios (each starts one or more daemons with Ray): `pytest -m slow tests/cli`."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from cli_helpers import free_port, rest, wait_status, write_experiment

pytestmark = pytest.mark.slow


def _wait(pred, timeout=120, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_trial_sigterm_then_resume_from_experiment_dir(cli, tmp_path):
    cfg = write_experiment(tmp_path / "p", max_trials=2, concurrency=1, sleep=60)
    port = free_port()
    r = cli("create", "-c", str(cfg), "-p", str(port))
    assert r.returncode == 0, r.stderr
    exp_id = r.stdout.split("The experiment id is ")[1].split()[0]
    jobs = _wait(lambda: [j for j in rest(port, "GET", "/trial-jobs")[1] if j["status"] == "RUNNING"],
                 what="a running trial")
    first = jobs[0]["trialJobId"]
    r = cli("trial", "kill", "-T", first)
    assert r.returncode == 0, r.stderr
    _wait(lambda: rest(port, "GET", f"/trial-jobs/{first}")[1]["status"] == "USER_CANCELED", what="the kill")
    second = _wait(lambda: [j for j in rest(port, "GET", "/trial-jobs")[1] if j["status"] == "RUNNING"],
                   what="the next trial")[0]["trialJobId"]
    # SIGTERM (what `kill` or a logout sends) stops the experiment cleanly, like `nniray stop`.
    pid = cli.registry()[exp_id]["pid"]
    os.kill(pid, signal.SIGTERM)
    _wait(lambda: cli.registry()[exp_id]["status"] == "STOPPED" and cli.registry()[exp_id]["pid"] is None,
          what="the daemon to record STOPPED")
    jobs = {j["trialJobId"]: j["status"] for j in json.loads(cli("trial", "ls", exp_id, "--json").stdout)}
    assert jobs == {first: "USER_CANCELED", second: "USER_CANCELED"}

    # resume from the folder, as if the registry had lost it
    reg = cli.home / "experiments.json"
    reg.write_text("{}")
    port2 = free_port()
    r = cli("resume", exp_id, "-p", str(port2), "-e", str(tmp_path / "p" / "exps"))
    assert r.returncode == 0, r.stderr
    assert wait_status(port2, ("DONE", "NO_MORE_TRIAL")) in ("DONE", "NO_MORE_TRIAL")
    r = cli("update", "trialnum", exp_id, "-v", "3")
    assert r.returncode == 0, r.stderr
    third = _wait(lambda: [j for j in rest(port2, "GET", "/trial-jobs")[1] if j["sequenceId"] == 2],
                  what="a third trial")
    assert third[0]["trialJobId"] not in (first, second)
    assert cli("stop", "--port", str(port2)).returncode == 0
    assert cli.registry()[exp_id]["status"] == "STOPPED"


def test_foreground_runs_to_the_end(cli, tmp_path):
    cfg = write_experiment(tmp_path / "fg", max_trials=3)
    r = cli("create", "-c", str(cfg), "-p", str(free_port()), "--foreground")
    assert r.returncode == 0, r.stderr
    exp_id = r.stdout.split("The experiment id is ")[1].split()[0]
    assert "DONE" in r.stdout and "Experiment stopped" in r.stdout
    entry = cli.registry()[exp_id]
    assert entry["status"] == "DONE" and entry["pid"] is None
    assert len(json.loads(cli("trial", "ls", exp_id, "--json").stdout)) == 3


def test_two_experiments_need_an_id_and_star_stops_both(cli, tmp_path):
    ids = []
    for name in ("a", "b"):
        cfg = write_experiment(tmp_path / name, name=name, max_trials=2)
        r = cli("create", "-c", str(cfg), "-p", str(free_port()))
        assert r.returncode == 0, r.stderr
        ids.append(r.stdout.split("The experiment id is ")[1].split()[0])
    r = cli("trial", "ls")
    assert r.returncode == 1 and "2 experiments are running" in r.stderr
    r = cli("stop")
    assert r.returncode == 1 and "give an experiment id" in r.stderr
    r = cli("stop", "*")
    assert r.returncode == 0, r.stderr
    assert all(f"Stopping experiment {i}" in r.stdout for i in ids)
    assert all(cli.registry()[i]["pid"] is None for i in ids)


def test_a_daemon_startup_failure_is_one_line(cli, tmp_path):
    # Valid YAML, but no node of this Ray cluster has a GPU: found only once Ray is up.
    cfg = write_experiment(tmp_path / "gpu", extra="trialGpuNumber: 1\n")
    r = cli("create", "-c", str(cfg), "-p", str(free_port()))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: trialGpuNumber:"), r.stderr
    assert cli.registry() == {}
    r = cli("create", "-c", str(cfg), "-p", str(free_port()), "--foreground")
    assert r.returncode == 1
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("ERROR")] == lines
    assert "Traceback" not in r.stderr
