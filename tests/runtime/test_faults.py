"""Anything can die; nothing reported is lost.  Each failure is injected for real: actors are
killed with ``ray.kill``, a driver process group with SIGKILL, a worker node removed from a
multi-node ``ray.cluster_utils`` cluster."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import ray

from nniray.actors import names
from nniray.experiment import Experiment
from nniray.storage import ExperimentStore

from runtime_helpers import ALGOS, make_config, write_trial

sys.path.insert(0, str(ALGOS))
from recording_tuner import events  # noqa: E402


def _recording_cfg(home, **over):
    rec = str(home / "record")
    base = dict(tuner={"className": "recording_tuner.RecordingTuner", "codeDirectory": str(ALGOS),
                       "classArgs": {"record_dir": rec}},
                searchSpace={"sleep": {"_type": "choice", "_value": [0.3]}}, maxTrialNumber=12)
    base.update(over)
    return make_config(home, **base), rec


def _wait(pred, timeout=120, every=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def _succeeded(exp):
    return [t for t in exp.list_trial_jobs() if t.status == "SUCCEEDED"]


TRIAL = """
import time
p = nni.get_next_parameter()
for i in range(3):
    nni.report_intermediate_result(i)
    time.sleep(p["sleep"] / 3)
nni.report_final_result(p["x"])
"""


def _check_complete(exp, n):
    """n trials, sequence ids 0..n-1 once each, every success with its final and 3 intermediates."""
    jobs = exp.list_trial_jobs()
    assert sorted(t.sequenceId for t in jobs) == list(range(n))
    metrics = exp.get_job_metrics()
    for t in jobs:
        if t.status == "SUCCEEDED":
            ms = metrics[t.trialJobId]
            assert [m.sequence for m in ms if m.type == "PERIODICAL"] == [0, 1, 2]
            assert [m.data for m in ms if m.type == "FINAL"] == [t.hyperParameters[0]["parameters"]["x"]]


@pytest.mark.usefixtures("ray_session")
def test_tuner_actor_killed_is_rebuilt_from_the_store(home):
    write_trial(home, TRIAL)
    cfg, rec = _recording_cfg(home)
    exp = Experiment(cfg)
    exp.start()
    try:
        _wait(lambda: len(_succeeded(exp)) >= 4)
        tuner = ray.get_actor(names.tuner(exp.id), namespace=names.NAMESPACE)
        ray.kill(tuner, no_restart=False)  # Ray restarts it in a fresh, empty process
        _wait(lambda: exp.get_status() == "DONE")
        _check_complete(exp, 12)
        ev = events(rec)
        pids = {e["pid"] for e in ev}
        assert len(pids) >= 2, "the tuner should have run in a second process"
        imports = [e for e in ev if e["kind"] == "import"]
        assert imports and imports[-1]["n"] >= 4  # rebuilt from every result stored before the kill
        assert {t.status for t in exp.list_trial_jobs()} == {"SUCCEEDED"}
    finally:
        exp.stop()


@pytest.mark.usefixtures("ray_session")
def test_controller_killed_continues_without_losing_or_duplicating(home):
    write_trial(home, TRIAL)
    cfg, rec = _recording_cfg(home, searchSpace={"sleep": {"_type": "choice", "_value": [0.9]}}, maxTrialNumber=10)
    exp = Experiment(cfg)
    exp.start()
    try:
        _wait(lambda: len(_succeeded(exp)) >= 2 and exp._store.status_counts().get("RUNNING", 0) >= 1)
        controller = ray.get_actor(names.controller(exp.id), namespace=names.NAMESPACE)
        before = ray.get(controller.ping.remote())["pid"]
        ray.kill(controller, no_restart=False)
        _wait(lambda: exp.get_status() == "DONE", timeout=180)
        assert ray.get(controller.ping.remote())["pid"] != before
        _check_complete(exp, 10)
        # Trials that ran across the restart were collected, not lost or re-run.
        assert {t.status for t in exp.list_trial_jobs()} == {"SUCCEEDED"}
        results = [e for e in events(rec) if e["kind"] == "result"]
        assert sorted({e["parameter_id"] for e in results}) == list(range(10))
        assert len(results) == len({e["parameter_id"] for e in results})  # the tuner heard each once
    finally:
        exp.stop()


DRIVER = """
import sys, time
from nniray.config import build_config
from nniray.experiment import Experiment
cfg = build_config({cfg!r})
exp = Experiment(cfg, id={exp_id!r})
exp.start()
print("STARTED", flush=True)
while True:
    time.sleep(1)
"""


@pytest.mark.usefixtures("ray_session")
def test_driver_killed_then_resume_rebuilds_the_tuner_from_all_results(home):
    write_trial(home, TRIAL)
    cfg, rec = _recording_cfg(home, maxTrialNumber=14)
    data = cfg.json_dict()
    data["trainingService"]["rayAddress"] = "local"  # the driver owns its own Ray cluster
    script = home / "driver.py"
    script.write_text(DRIVER.format(cfg=data, exp_id="drvkill1"))
    env = dict(os.environ, NNIRAY_HOME=str(home / "home"))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=home, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    exp_dir = home / "exps" / "drvkill1"
    try:
        def enough():
            try:
                return len(ExperimentStore(exp_dir, readonly=True).completed_results()) >= 5
            except Exception:  # not created yet
                return False
        _wait(enough, timeout=180, every=0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray cluster it started
        proc.wait()
    # The dead cluster's worker processes notice their raylet is gone within seconds; until
    # then its controller may still record results.  Snapshot once the store is quiet.
    last, stable_since = -1, time.time()
    while time.time() - stable_since < 5:
        n = len(ExperimentStore(exp_dir, readonly=True).completed_results())
        if n != last:
            last, stable_since = n, time.time()
        time.sleep(0.5)
    stored = ExperimentStore(exp_dir, readonly=True)
    done_before = len(stored.completed_results())
    seqs_before = stored.max_sequence_id()
    stored.close()
    exp = Experiment.resume("drvkill1", experiment_dir=home / "exps", wait_completion=False)
    try:
        _wait(lambda: exp.get_status() == "DONE", timeout=180)
        jobs = exp.list_trial_jobs()
        assert sorted(t.sequenceId for t in jobs) == list(range(14))  # continued, nothing counted twice
        imports = [e for e in events(rec) if e["kind"] == "import"]
        # The new tuner saw every result reported before the kill: those stored, and those the
        # interrupted trials had written to their metrics files (read back on resume).
        before_kill = [t for t in jobs if t.sequenceId <= seqs_before and t.finalMetricData]
        assert imports[-1]["n"] == len(before_kill) >= done_before
        interrupted = [t for t in jobs if t.sequenceId <= seqs_before and t.status != "SUCCEEDED"]
        assert all(t.status == "SYS_CANCELED" for t in interrupted)
        assert len([t for t in jobs if t.status == "SUCCEEDED"]) + len(interrupted) == 14
    finally:
        exp.stop()


NODE_SCRIPT = """
import json, sys, time
import ray
from ray.cluster_utils import Cluster
from nniray.config import build_config
from nniray.experiment import Experiment

cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 0}})
workers = [cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)]
cluster.wait_for_nodes()
cfg = {cfg!r}
cfg["trainingService"]["rayAddress"] = cluster.address  # attach to an existing cluster by address
exp = Experiment(build_config(cfg))
exp.start()
deadline = time.time() + 60
while time.time() < deadline and exp._store.status_counts().get("SUCCEEDED", 0) < 2:
    time.sleep(0.2)
victim = workers[0]
cluster.remove_node(victim)
deadline = time.time() + 240
while time.time() < deadline and exp.get_status() != "DONE":
    time.sleep(0.5)
jobs = exp.list_trial_jobs()
print("RESULT " + json.dumps({{"status": exp.get_status(),
    "jobs": [[t.sequenceId, t.status, t.message] for t in jobs]}}), flush=True)
exp.stop()
ray.shutdown()
cluster.shutdown()
"""


@pytest.mark.parametrize("retries", [0, 1])
def test_worker_node_removed_trials_fail_or_retry_and_the_experiment_finishes(home, retries):
    write_trial(home, TRIAL)
    cfg = make_config(home, searchSpace={"sleep": {"_type": "choice", "_value": [3.0]}},
                      tuner={"name": "Random", "classArgs": {"seed": 1}}, maxTrialNumber=6,
                      trainingService={"platform": "local", "maxTrialRetries": retries})
    data = cfg.json_dict()
    data["searchSpace"]["x"] = {"_type": "uniform", "_value": [0, 1]}
    script = home / "cluster.py"
    script.write_text(NODE_SCRIPT.format(cfg=data))
    env = dict(os.environ, NNIRAY_HOME=str(home / "home"))
    out = subprocess.run([sys.executable, str(script)], cwd=home, env=env, capture_output=True, text=True,
                         timeout=400)
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    assert line, out.stdout[-3000:] + out.stderr[-3000:]
    res = json.loads(line[0][7:])
    assert res["status"] == "DONE"
    jobs = res["jobs"]
    assert sorted(j[0] for j in jobs) == list(range(6))  # the experiment finished its budget
    lost = [j for j in jobs if j[1] == "FAILED"]
    if retries == 0:
        assert lost and all("runner died" in j[2] for j in lost)  # trials on the dead node failed
        assert all(j[1] in ("SUCCEEDED", "FAILED") for j in jobs)
    else:
        assert not lost and all(j[1] == "SUCCEEDED" for j in jobs)  # re-run elsewhere instead
