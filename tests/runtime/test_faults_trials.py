"""Trial-side faults through the real runtime (real Ray, real processes, real SQLite): a runner
killed under a command trial, a retried attempt, the experiment stopped under a trial that
started processes of its own.  Processes are checked by PID."""
from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest
import ray

from nniray.actors import names
from nniray.experiment import Experiment

from runtime_helpers import make_config, write_trial

SPAWN = """
import json, os, subprocess, sys, time
pids = [os.getpid(), subprocess.Popen(["sleep", "1000"]).pid,
        subprocess.Popen(["sleep", "1000"], start_new_session=True).pid]
out = os.environ["NNI_OUTPUT_DIR"]
with open(os.path.join(out, f"pids-{os.environ['NNIRAY_TRIAL_ATTEMPT']}.json"), "w") as f:
    json.dump(pids, f)
side = open(os.path.join(out, f"side-{os.environ['NNIRAY_TRIAL_ATTEMPT']}.log"), "a")

def report(v):
    nni.report_intermediate_result(v)
    side.write(json.dumps(v) + "\\n")  # written only once the report call returned
    side.flush()
"""

# Attempt 0 reports without pause until its runner is killed; attempt 1 reports 3 values and a final.
TRIAL = SPAWN + """
if os.environ["NNIRAY_TRIAL_ATTEMPT"] == "0":
    i = 0
    while True:
        report(i)
        i += 1
        time.sleep(0.002)
for v in (100, 101, 102):
    report(v)
nni.report_final_result(0.5)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"


def _wait(pred, timeout=120, every=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def _rows(home, exp, tid):
    db = sqlite3.connect(f"file:{home / 'exps' / exp.id / 'experiment.db'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT attempt, type, sequence, value FROM metrics WHERE trial_id=? ORDER BY id",
                          (tid,)).fetchall()
    finally:
        db.close()


def _stored_status(exp_dir):
    db = sqlite3.connect(f"file:{exp_dir / 'experiment.db'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key='status'").fetchone()
        return None if row is None else json.loads(row[0])
    finally:
        db.close()


def _done(exp, exp_dir):
    # DONE as the controller says and as the store has it: the store is what is read next.
    return exp.get_status() == "DONE" and _stored_status(exp_dir) == "DONE"


def _side(trial_dir, attempt):
    path = trial_dir / f"side-{attempt}.log"
    return [json.loads(x) for x in path.read_text().split()] if path.exists() else []


def _kill_runner_when(exp, trial_dir, attempt=0, n=50):
    side = trial_dir / f"side-{attempt}.log"
    _wait(lambda: side.exists() and len(side.read_text().split()) >= n)
    runner = ray.get_actor(names.runner(exp.id, 0), namespace=names.NAMESPACE)
    ray.kill(runner, no_restart=True)


def _only_trial(exp):
    (t,) = exp.list_trial_jobs()
    return t


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("retries", [0, 1])
def test_runner_killed_the_command_trial_dies_with_it_and_every_report_is_stored_once(home, retries):
    write_trial(home, TRIAL)
    cfg = make_config(home, trialConcurrency=1, maxTrialNumber=1,
                      trainingService={"platform": "local", "maxTrialRetries": retries})
    exp = Experiment(cfg)
    exp.start()
    try:
        _wait(lambda: len(exp.list_trial_jobs()) == 1)
        tid = _only_trial(exp).trialJobId
        trial_dir = home / "exps" / exp.id / "trials" / tid
        _kill_runner_when(exp, trial_dir)
        pids0 = json.loads((trial_dir / "pids-0.json").read_text())
        # The trial and what it started die with their runner (no orphan running on unread).
        _wait(lambda: not any(alive(p) for p in pids0), timeout=30)
        _wait(lambda: _done(exp, home / "exps" / exp.id), timeout=180)
        t = _only_trial(exp)
        rows = _rows(home, exp, tid)
        first = [json.loads(v) for a, ty, s, v in rows if a == 0 and ty == "PERIODICAL"]
        reported = _side(trial_dir, 0)
        assert reported and first[:len(reported)] == reported  # each reported value, once, in order
        assert len(first) <= len(reported) + 1  # at most the one written before its side-log line
        assert [s for a, ty, s, v in rows if a == 0] == list(range(len(first)))
        if retries == 0:
            assert t.status == "FAILED" and "runner died" in t.message
            assert not (trial_dir / "attempt-1").exists()
        else:
            # The retry has its own attempt: its values once, beside (not over) attempt 0's.
            assert t.status == "SUCCEEDED"
            assert [(ty, s, json.loads(v)) for a, ty, s, v in rows if a == 1] == [
                ("PERIODICAL", 0, 100), ("PERIODICAL", 1, 101), ("PERIODICAL", 2, 102), ("FINAL", 0, 0.5)]
            assert [ty for a, ty, s, v in rows].count("FINAL") == 1
            assert [m.data for m in t.finalMetricData] == [0.5]
            pids1 = json.loads((trial_dir / "pids-1.json").read_text())
            assert not any(alive(p) for p in pids1)
    finally:
        exp.stop()


STOPPED = SPAWN + """
report(1)
time.sleep(1000)
"""


@pytest.mark.usefixtures("ray_session")
def test_stopping_the_experiment_ends_every_process_its_trials_started(home):
    write_trial(home, STOPPED)
    cfg = make_config(home, trialConcurrency=2, maxTrialNumber=2)
    exp = Experiment(cfg)
    exp.start()
    try:
        _wait(lambda: len(exp.list_trial_jobs()) == 2)
        dirs = [home / "exps" / exp.id / "trials" / t.trialJobId for t in exp.list_trial_jobs()]
        _wait(lambda: all((d / "side-0.log").exists() for d in dirs))
        pids = [p for d in dirs for p in json.loads((d / "pids-0.json").read_text())]
        assert all(alive(p) for p in pids)
    finally:
        exp.stop()
    assert {t.status for t in exp.list_trial_jobs()} == {"USER_CANCELED"}
    assert [p for p in pids if alive(p)] == []
