"""The fault matrix (slow suite): kill a trial / its runner / the tuner / the controller / the
driver, with and without retries, under command and function trials.  Every trial attempt
writes a side log of each value *after* its report call returned; from it the test asserts that
every reported value is in the store exactly once (and that the store holds nothing no attempt
reported, beyond the one value an attempt may have had in flight when it was killed)."""
from __future__ import annotations

import glob
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import ray

from nniray.actors import names
from nniray.experiment import Experiment
from nniray.storage import ExperimentStore

from runtime_helpers import make_config

pytestmark = pytest.mark.slow

N_REPORTS = 25

BODY = """
import os, time, uuid
import nniray as nni


def trial(p=None):
    p = p or nni.get_next_parameter()
    tid = nni.get_trial_id()
    run = uuid.uuid4().hex[:10]  # one per attempt
    side = open(os.path.join(p["side"], f"{tid}-{run}.log"), "a")
    with open(os.path.join(p["side"], f"{tid}-{run}.pid"), "w") as f:
        f.write(str(os.getpid()))
    for i in range(N_REPORTS):
        nni.report_intermediate_result({"default": i / 100, "run": run, "i": i})
        side.write(f"P {i}\\n")
        side.flush()
        crash = os.path.join(p["side"], "crash-once")
        if i == 5 and os.path.exists(crash):
            try:
                os.rename(crash, crash + ".taken")  # one trial takes it
            except OSError:
                pass
            else:
                raise RuntimeError("injected trial crash")
        time.sleep(0.03)
    nni.report_final_result({"default": p["x"], "run": run, "final": True})
    side.write("F 0\\n")
    side.flush()
""".replace("N_REPORTS", str(N_REPORTS))


def _setup(home, kind):
    side = home / "side"
    side.mkdir()
    (home / "matrix_trial.py").write_text(BODY + "\nif __name__ == '__main__':\n    trial()\n")
    over = {"searchSpace": {"side": {"_type": "choice", "_value": [str(side)]},
                            "x": {"_type": "uniform", "_value": [0, 1]}}}
    if kind == "command":
        over["trialCommand"] = f"{sys.executable} matrix_trial.py"
    else:
        sys.path.insert(0, str(home))
        import importlib
        mod = importlib.import_module("matrix_trial")
        importlib.reload(mod)
        over.update(trialCommand=None, trial_function=mod.trial)
    return side, over


def _wait(pred, timeout=180, every=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(every)
    raise AssertionError("condition not reached in time")


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


def _running_with_reports(side, n=5):
    """(trial id, run) of attempts that have logged at least n values and not finished."""
    out = []
    for path in glob.glob(str(side / "*.log")):
        lines = Path(path).read_text().split("\n")
        if len([x for x in lines if x.startswith("P")]) >= n and not any(x.startswith("F") for x in lines):
            out.append(tuple(Path(path).stem.split("-", 1)))
    return out


def _check_exactly_once(exp_dir, side):
    db = sqlite3.connect(f"file:{exp_dir / 'experiment.db'}?mode=ro", uri=True)
    rows = db.execute("SELECT trial_id, attempt, type, value FROM metrics").fetchall()
    trial_ids = {r[0] for r in db.execute("SELECT trial_id FROM trials")}
    db.close()
    stored = Counter()
    for tid, attempt, mtype, value in rows:
        v = json.loads(value)
        stored[(tid, v["run"], "F" if mtype == "FINAL" else "P", 0 if mtype == "FINAL" else v["i"])] += 1
    reported = set()
    for path in glob.glob(str(side / "*.log")):
        tid, run = Path(path).stem.split("-", 1)
        for line in Path(path).read_text().split("\n"):
            if line:
                kind, i = line.split()
                reported.add((tid, run, kind, int(i)))
    assert reported, "no trial reported anything"
    assert {k[0] for k in reported} <= trial_ids
    missing = sorted(k for k in reported if stored[k] == 0)
    twice = sorted(k for k, n in stored.items() if n > 1)
    assert not missing, f"reported but not stored: {missing[:10]}"
    assert not twice, f"stored more than once: {twice[:10]}"
    extra = Counter((k[0], k[1]) for k in stored if k not in reported)
    # An attempt killed between its report call and its side-log line: at most that one value.
    assert all(n <= 1 for n in extra.values()), extra


def _kill(victim, exp, side, home):
    _wait(lambda: _running_with_reports(side))
    tid, run = _running_with_reports(side)[0]
    if victim == "trial":
        pid = int((side / f"{tid}-{run}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
    elif victim == "runner":
        node = ExperimentStore(home / "exps" / exp.id, readonly=True).get_trial(tid)["node"]
        ray.kill(ray.get_actor(names.runner(exp.id, int(node)), namespace=names.NAMESPACE), no_restart=True)
    elif victim == "tuner":
        ray.kill(ray.get_actor(names.tuner(exp.id), namespace=names.NAMESPACE), no_restart=False)
    elif victim == "controller":
        ray.kill(ray.get_actor(names.controller(exp.id), namespace=names.NAMESPACE), no_restart=False)


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("retries", [0, 1])
@pytest.mark.parametrize("victim", ["trial", "runner", "tuner", "controller"])
@pytest.mark.parametrize("kind", ["command", "function"])
def test_fault_matrix_every_reported_value_is_stored_exactly_once(home, kind, victim, retries):
    side, over = _setup(home, kind)
    if victim == "trial" and kind == "function":
        (side / "crash-once").write_text("")  # a function trial "dies" by raising mid-way
    cfg = make_config(home, trialConcurrency=2, maxTrialNumber=5,
                      trainingService={"platform": "local", "maxTrialRetries": retries}, **over)
    exp = Experiment(cfg)
    exp.start()
    try:
        if victim == "trial" and kind == "function":
            _wait(lambda: (side / "crash-once.taken").exists())
        else:
            _kill(victim, exp, side, home)
        _wait(lambda: _done(exp, home / "exps" / exp.id), timeout=300)
        jobs = exp.list_trial_jobs()
        assert sorted(t.sequenceId for t in jobs) == list(range(5))
        statuses = Counter(t.status for t in jobs)
        if victim in ("tuner", "controller") or (victim == "runner" and retries):
            assert statuses == {"SUCCEEDED": 5}, statuses
        else:
            assert statuses["FAILED"] == 1 and statuses["SUCCEEDED"] == 4, statuses
        _check_exactly_once(home / "exps" / exp.id, side)
    finally:
        exp.stop()


DRIVER = """
import sys, time
from nniray.config import build_config
from nniray.experiment import Experiment
exp = Experiment(build_config({cfg!r}), id={exp_id!r})
exp.start()
while True:
    time.sleep(1)
"""


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("retries", [0, 1])
def test_fault_matrix_driver_killed_then_resumed_command_trials(home, retries):
    side, over = _setup(home, "command")
    cfg = make_config(home, trialConcurrency=2, maxTrialNumber=5,
                      trainingService={"platform": "local", "maxTrialRetries": retries}, **over)
    data = cfg.json_dict()
    data["trainingService"]["rayAddress"] = "local"  # the driver owns its own Ray cluster
    exp_id = f"mtxdrv{retries}a"
    (home / "driver.py").write_text(DRIVER.format(cfg=data, exp_id=exp_id))
    env = dict(os.environ, NNIRAY_HOME=str(home / "home"))
    log = open(home / "driver.log", "wb")
    proc = subprocess.Popen([sys.executable, str(home / "driver.py")], cwd=home, env=env, start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: _running_with_reports(side) or proc.poll() is not None, timeout=240)
        assert proc.poll() is None, (home / "driver.log").read_text()[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray cluster it started
        proc.wait()
    # The dead cluster's workers notice their raylet is gone within seconds.
    _wait(lambda: not any(_pid_alive(int(Path(p).read_text())) for p in glob.glob(str(side / "*.pid"))),
          timeout=60)
    exp = Experiment.resume(exp_id, experiment_dir=home / "exps", wait_completion=False)
    try:
        _wait(lambda: _done(exp, home / "exps" / exp_id), timeout=300)
        assert sorted(t.sequenceId for t in exp.list_trial_jobs()) == list(range(5))
        _check_exactly_once(home / "exps" / exp_id, side)
    finally:
        exp.stop()


def _pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"
