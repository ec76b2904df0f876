"""The controller shell with real Ray and real SQLite: what a trial or the disk can do to it.

Regression tests for the runtime faults found by hand (each failed before the core/shell
split): a malformed metric cannot wedge the controller, a retried attempt counts once and
runs at once, resume reads what interrupted trials wrote, a full disk is an ERROR with its
reason (and resume works once space is freed), and a second driver of an experiment is
refused naming the first."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import ray

from nniray.actors import names
from nniray.errors import ExperimentError, ExperimentRunningError, NniRayError
from nniray.experiment import Experiment
from nniray.storage import ExperimentStore

from runtime_helpers import make_config, write_trial


def _wait(pred, timeout=120, every=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def _trials(exp):
    return {t.trialJobId: t for t in exp.list_trial_jobs()}


SLOW_TRIAL = """
import time
p = nni.get_next_parameter()
nni.report_intermediate_result(0.1)
time.sleep(p.get("sleep", 30))
nni.report_final_result(0.5)
"""


@pytest.mark.usefixtures("ray_session")
def test_a_final_beyond_float_range_fails_its_trial_and_the_experiment_ends(home):
    """Before: OverflowError inside the controller; the trial stayed RUNNING forever."""
    write_trial(home, SLOW_TRIAL)
    cfg = make_config(home, maxTrialNumber=1, trialConcurrency=1,
                      searchSpace={"sleep": {"_type": "choice", "_value": [60]}})
    exp = Experiment(cfg)
    exp.start()
    try:
        _wait(lambda: exp._store.status_counts().get("RUNNING", 0) == 1)
        tid = exp._store.list_trials()[0]["trial_id"]
        controller = ray.get_actor(names.controller(exp.id), namespace=names.NAMESPACE)
        # What a runner of another language might send: a 400-digit integer as the final.
        assert ray.get(controller.report_events.remote(
            [{"trial_id": tid, "type": "FINAL", "sequence": 0, "value": int("9" * 400)}]))
        _wait(lambda: exp.get_status() == "DONE")
        t = _trials(exp)[tid]
        assert t.status == "FAILED"
        assert "final result rejected" in t.message and "float" in t.message
        assert t.finalMetricData == []
    finally:
        exp.stop()


@pytest.mark.usefixtures("ray_session")
def test_a_malformed_record_cannot_wedge_the_controller(home):
    write_trial(home, SLOW_TRIAL)
    cfg = make_config(home, maxTrialNumber=1, trialConcurrency=1,
                      searchSpace={"sleep": {"_type": "choice", "_value": [60]}})
    exp = Experiment(cfg)
    exp.start()
    try:
        _wait(lambda: exp._store.status_counts().get("RUNNING", 0) == 1)
        tid = exp._store.list_trials()[0]["trial_id"]
        controller = ray.get_actor(names.controller(exp.id), namespace=names.NAMESPACE)
        junk = [None, {"type": "FINAL"}, {"trial_id": tid, "type": "BOGUS", "sequence": 0, "value": 1},
                {"trial_id": tid, "type": "PERIODICAL", "sequence": "x", "value": 1}]
        assert ray.get(controller.report_events.remote(junk))
        _wait(lambda: exp.get_status() == "DONE")
        t = _trials(exp)[tid]
        assert t.status == "FAILED" and "unknown type 'BOGUS'" in t.message
        assert ray.get(controller.ping.remote())["status"] == "DONE"  # still answering
    finally:
        exp.stop()


def _retry_trial(params):
    """Attempt 0 of the "dies" trial kills its runner (a function trial runs in the runner's
    process); attempt 1 reports normally.  The "long" trial keeps its runner busy meanwhile."""
    import nniray as nni
    if params["kind"] == "long":
        time.sleep(25)
        return 1.0
    marker = os.path.join(params["marker"], nni.get_trial_id())
    nni.report_intermediate_result(0.1)
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(0.5)  # let the intermediate reach the store
        os.kill(os.getpid(), signal.SIGKILL)
    nni.report_intermediate_result(0.2)
    return 0.5


@pytest.mark.usefixtures("ray_session")
def test_a_retried_trial_counts_once_and_runs_without_waiting_for_the_others(home):
    marker_dir = home / "markers"
    marker_dir.mkdir()
    cfg = make_config(home, maxTrialNumber=2, trialConcurrency=2, trialCommand=None, trial_function=_retry_trial,
                      searchSpace={"kind": {"_type": "choice", "_value": ["long", "dies"]},
                                   "marker": {"_type": "choice", "_value": [str(marker_dir)]}},
                      tuner={"name": "GridSearch"}, trainingService={"platform": "local", "maxTrialRetries": 1})
    exp = Experiment(cfg)
    exp.start()
    try:
        _wait(lambda: exp.get_status() == "DONE", timeout=180)
        jobs = list(_trials(exp).values())
        assert {t.status for t in jobs} == {"SUCCEEDED"}
        dies = next(t for t in jobs if t.hyperParameters[0]["parameters"]["kind"] == "dies")
        long = next(t for t in jobs if t.hyperParameters[0]["parameters"]["kind"] == "long")
        assert ExperimentStore(exp.experiment_dir, readonly=True).get_trial(dies.trialJobId)["attempt"] == 1
        finals = [m for m in exp.get_job_metrics(dies.trialJobId)[dies.trialJobId] if m.type == "FINAL"]
        assert [m.data for m in finals] == [0.5]  # one final, not one per attempt
        assert dies.finalMetricData and dies.finalMetricData[0].data == 0.5
        # The retry ran while the long trial was still running: it did not wait for it.
        assert dies.endTime < long.endTime
    finally:
        exp.stop()


DRIVER = """
import time
from nniray.config import build_config
from nniray.experiment import Experiment
exp = Experiment(build_config({cfg!r}), id={exp_id!r})
exp.start()
print("STARTED", flush=True)
while True:
    time.sleep(1)
"""

RESUMER = """
import time
from nniray.experiment import Experiment
exp = Experiment.resume({exp_id!r}, wait_completion=False, experiment_dir={exp_dir!r})
print("RESUMED", flush=True)
while True:
    time.sleep(1)
"""


def _spawn(home, code, marker, env=None):
    script = home / f"drv-{uuid.uuid4().hex[:6]}.py"
    script.write_text(code)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=home, start_new_session=True,
                            env=dict(os.environ, NNIRAY_HOME=str(home / "home"), **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.time() + 180
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line.strip() == marker:
            return proc
    proc.kill()
    raise AssertionError("driver did not start:\n" + "".join(lines[-30:]))


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)


@pytest.mark.usefixtures("ray_session")
def test_resume_reads_an_interrupted_trials_metrics_file_before_cancelling_it(home):
    """Before: a FINAL in the file that had not reached the store was lost (SYS_CANCELED)."""
    write_trial(home, SLOW_TRIAL)
    cfg = make_config(home, maxTrialNumber=2, trialConcurrency=1,
                      searchSpace={"sleep": {"_type": "choice", "_value": [300]}})
    data = cfg.json_dict()
    data["trainingService"]["rayAddress"] = "local"  # the driver owns its Ray: killing it kills all
    proc = _spawn(home, DRIVER.format(cfg=data, exp_id="rsmfile1"), "STARTED")
    exp_dir = home / "exps" / "rsmfile1"
    try:
        store = ExperimentStore(exp_dir, readonly=True)
        _wait(lambda: store.status_counts().get("RUNNING", 0) == 1 and store.metrics())
        tid = store.list_trials()[0]["trial_id"]
    finally:
        _kill_group(proc)
    # The trial finished just as everything died: its final is in its file, not in the store.
    tdir = exp_dir / "trials" / tid
    with open(tdir / ".nni" / "metrics", "a") as f:
        f.write(json.dumps({"type": "FINAL", "value": 0.75, "time": time.time()}) + "\n")
    (tdir / ".nni" / "state").write_text(f"0 {int(time.time() * 1000)}\n")
    assert ExperimentStore(exp_dir, readonly=True).get_trial(tid)["final"] is None
    exp = Experiment.resume("rsmfile1", wait_completion=False, experiment_dir=str(exp_dir))
    try:
        t = exp._store.get_trial(tid)
        assert t["status"] == "SUCCEEDED" and t["final"] == 0.75
        assert [m["value"] for m in exp._store.metrics(tid, "FINAL")] == [0.75]
        assert [m["value"] for m in exp._store.metrics(tid, "PERIODICAL")] == [0.1]  # read once
    finally:
        exp.stop()


@pytest.mark.usefixtures("ray_session")
def test_a_second_resume_is_refused_naming_the_running_one(home):
    write_trial(home, SLOW_TRIAL)
    cfg = make_config(home, maxTrialNumber=1, trialConcurrency=1,
                      searchSpace={"sleep": {"_type": "choice", "_value": [0.1]}})
    exp = Experiment(cfg, id="twores01")
    exp.run()
    exp_dir = str(exp.experiment_dir)
    # A first resume, in another process with its own Ray, holds the experiment.
    first = _spawn(home, RESUMER.format(exp_id="twores01", exp_dir=exp_dir), "RESUMED",
                   env={"RAY_ADDRESS": "local"})
    try:
        with pytest.raises(ExperimentRunningError) as info:
            Experiment.resume("twores01", wait_completion=False, experiment_dir=exp_dir)
        assert f"process {first.pid}" in str(info.value) and "already running" in str(info.value)
        assert isinstance(info.value, (ExperimentError, NniRayError))
        # The refused one started nothing: no controller of ours on this cluster.
        with pytest.raises(ValueError):
            ray.get_actor(names.controller("twores01"), namespace=names.NAMESPACE)
    finally:
        _kill_group(first)
    # Once the first is gone (however it ended), resume works.
    again = Experiment.resume("twores01", wait_completion=False, experiment_dir=exp_dir)
    again.stop()


@pytest.fixture()
def small_disk(tmp_path):
    """A 16 MiB file system of our own, so that the store really meets 'disk is full'."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(path):
    """Take every free byte of the file system (unbuffered: nothing left to flush)."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1 << 9):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.usefixtures("ray_session")
def test_disk_full_is_an_error_with_its_reason_and_resume_works_after(home, small_disk):
    """Before: the controller loop died, the status stayed RUNNING with no error."""
    write_trial(home, textwrap.dedent("""
        import time
        p = nni.get_next_parameter()
        for i in range(20):
            nni.report_intermediate_result(i)
            time.sleep(0.1)
        nni.report_final_result(p["x"])
    """))
    cfg = make_config(home, maxTrialNumber=8, trialConcurrency=2, experimentWorkingDirectory=str(small_disk))
    exp = Experiment(cfg)
    exp.start()
    exp_id, exp_dir = exp.id, str(exp.experiment_dir)
    try:
        _wait(lambda: exp._store.metrics())
        filler = _fill(small_disk)
        _wait(lambda: exp.get_status() == "ERROR", timeout=120)
        errors = exp.get_errors()
        assert any("database or disk is full" in e for e in errors), errors
    finally:
        exp.stop()
    filler.unlink()
    again = Experiment.resume(exp_id, wait_completion=False, experiment_dir=exp_dir)
    try:
        _wait(lambda: again.get_status() == "DONE", timeout=180)
        statuses = [t.status for t in again.list_trial_jobs()]
        assert len(statuses) == 8 and "RUNNING" not in statuses
        assert statuses.count("SUCCEEDED") >= 6
    finally:
        again.stop()
