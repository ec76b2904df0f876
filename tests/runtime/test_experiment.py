"""End-to-end experiments on real Ray: both trial kinds, NNI's limits and statuses, bad trials,
run-time updates, the assessor, and two experiments side by side."""
from __future__ import annotations

import json
import math
import os
import sys
import time

import pytest

import nniray
from nniray.config import ConfigError
from nniray.experiment import Experiment, ExperimentError

from runtime_helpers import ALGOS, make_config, write_trial

pytestmark = pytest.mark.usefixtures("ray_session")


def _run(cfg, fn=None):
    exp = Experiment(cfg, trial_function=fn) if fn is not None else Experiment(cfg)
    assert exp.run() is True, exp.get_errors()
    return exp


def _by_status(exp):
    out = {}
    for t in exp.list_trial_jobs():
        out.setdefault(t.status, []).append(t)
    return out


# --------------------------------------------------------------------------- function trials
def _fn_trial(params):
    assert nniray.get_next_parameter() == params
    assert nniray.get_next_parameter() is None  # non-multiphase: only the first call
    assert nniray.get_current_parameter("x") == params["x"]
    for i in range(3):
        nniray.report_intermediate_result(params["x"] + i)
    nniray.report_final_result({"default": params["x"], "seq": nniray.get_sequence_id(),
                                "tid": nniray.get_trial_id(), "eid": nniray.get_experiment_id()})


def test_function_trials_report_everything(home):
    cfg = make_config(home, trialCommand=None, trial_function=_fn_trial, maxTrialNumber=6)
    exp = _run(cfg)
    jobs = exp.list_trial_jobs()
    assert sorted(t.sequenceId for t in jobs) == list(range(6))
    assert {t.status for t in jobs} == {"SUCCEEDED"}
    metrics = exp.get_job_metrics()
    for t in jobs:
        final = t.finalMetricData[0].data
        assert final["seq"] == t.sequenceId and final["tid"] == t.trialJobId and final["eid"] == exp.id
        assert final["default"] == t.hyperParameters[0]["parameters"]["x"]
        inter = [m.data for m in metrics[t.trialJobId] if m.type == "PERIODICAL"]
        assert inter == [final["default"] + i for i in range(3)]
    data = exp.export_data()
    assert len(data) == 6 and all("seq" in d.value for d in data)  # extra dict keys kept


def _returns_metric(params):
    return params["x"] * 2


def test_function_return_value_is_the_final_result(home):
    exp = _run(make_config(home, trialCommand=None, trial_function=_returns_metric, maxTrialNumber=3))
    for d in exp.export_data():
        assert d.value == pytest.approx(d.parameter["x"] * 2)


# --------------------------------------------------------------------------- command trials
def test_command_trial_environment_files_and_metrics(home):
    write_trial(home, """
import json, os, sys
p = nni.get_next_parameter()
env = {k: os.environ.get(k) for k in ("NNI_PLATFORM", "NNI_EXP_ID", "NNI_TRIAL_JOB_ID", "NNI_SYS_DIR",
                                     "NNI_OUTPUT_DIR", "NNI_TRIAL_SEQ_ID")}
print(json.dumps(env))
print("to stderr", file=sys.stderr)
assert "ray" not in sys.modules and "torch" not in sys.modules, "trial side must stay light"
nni.report_intermediate_result(0.5)
nni.report_final_result(p["x"])
""")
    exp = _run(make_config(home, maxTrialNumber=3))
    for t in exp.list_trial_jobs():
        assert t.status == "SUCCEEDED", t.message
        tdir = exp.experiment_dir / "trials" / t.trialJobId
        env = json.loads((tdir / "trial.log").read_text().splitlines()[0])
        assert env == {"NNI_PLATFORM": "local", "NNI_EXP_ID": exp.id, "NNI_TRIAL_JOB_ID": t.trialJobId,
                       "NNI_SYS_DIR": str(tdir), "NNI_OUTPUT_DIR": str(tdir), "NNI_TRIAL_SEQ_ID": str(t.sequenceId)}
        assert "to stderr" in (tdir / "stderr").read_text()
        assert json.loads((tdir / "parameter.cfg").read_text())["parameters"] == t.hyperParameters[0]["parameters"]
        assert (tdir / ".nni" / "state").read_text().split()[0] == "0"
        assert t.finalMetricData[0].data == t.hyperParameters[0]["parameters"]["x"]


def test_crashing_and_killed_trials_fail_and_the_experiment_goes_on(home):
    write_trial(home, """
import os, signal
p = nni.get_next_parameter()
if nni.get_sequence_id() == 1:
    raise RuntimeError("boom in trial")
if nni.get_sequence_id() == 2:
    os.kill(os.getpid(), signal.SIGKILL)
nni.report_final_result(p["x"])
""")
    exp = _run(make_config(home, maxTrialNumber=5))
    by_seq = {t.sequenceId: t for t in exp.list_trial_jobs()}
    assert len(by_seq) == 5  # maxTrialNumber counts failed trials
    assert by_seq[1].status == "FAILED" and "boom in trial" in by_seq[1].message
    assert "boom in trial" in (exp.experiment_dir / "trials" / by_seq[1].trialJobId / "stderr").read_text()
    assert by_seq[2].status == "FAILED" and "SIGKILL" in by_seq[2].message
    assert [by_seq[i].status for i in (0, 3, 4)] == ["SUCCEEDED"] * 3


def test_missing_command_and_huge_output(home):
    exp = _run(make_config(home, trialCommand="definitely-not-a-command --x", maxTrialNumber=2))
    for t in exp.list_trial_jobs():
        assert t.status == "FAILED" and "command not found" in t.message
    write_trial(home, "import sys\nsys.stdout.write('x' * (8 << 20))\nsys.stderr.write('y' * (2 << 20))\n"
                      "nni.report_final_result(1.0)\n", name="loud.py")
    exp = _run(make_config(home, trialCommand=f"{sys.executable} loud.py", maxTrialNumber=2))
    for t in exp.list_trial_jobs():
        assert t.status == "SUCCEEDED"
        assert os.path.getsize(exp.experiment_dir / "trials" / t.trialJobId / "trial.log") == 8 << 20


# --------------------------------------------------------------------------- bad metrics
@pytest.mark.parametrize("bad, words", [
    (float("nan"), "not finite"), (float("inf"), "not finite"), ("0.9", "not a number"),
    ({"acc": 0.9}, "no 'default' key"),
])
def test_bad_final_metric_fails_the_trial_with_a_clear_message(home, bad, words):
    def trial(params):
        nniray.report_final_result(bad)
    exp = _run(make_config(home, trialCommand=None, trial_function=trial, maxTrialNumber=1, trialConcurrency=1))
    (t,) = exp.list_trial_jobs()
    assert t.status == "FAILED" and words in t.message and "report_final_result" in t.message
    assert exp.export_data() == []  # nothing unusable reached the tuner


def _twice(params):
    nniray.report_final_result(1.0)
    nniray.report_final_result(2.0)


def _silent(params):
    return None


def test_final_twice_and_never_reporting(home):
    exp = _run(make_config(home, trialCommand=None, trial_function=_twice, maxTrialNumber=1, trialConcurrency=1))
    (t,) = exp.list_trial_jobs()
    assert t.status == "FAILED" and "already reported" in t.message
    assert [d.value for d in exp.export_data()] == [1.0]  # the first report is kept
    exp = _run(make_config(home, trialCommand=None, trial_function=_silent, maxTrialNumber=2))
    assert {t.status for t in exp.list_trial_jobs()} == {"SUCCEEDED"}
    assert exp.export_data() == []


# --------------------------------------------------------------------------- limits and statuses
def test_exhausted_grid_search_ends_the_experiment(home):
    cfg = make_config(home, searchSpace={"a": {"_type": "choice", "_value": [1, 2, 3]},
                                         "b": {"_type": "randint", "_value": [0, 2]}},
                      tuner={"name": "GridSearch"}, maxTrialNumber=100, trialCommand=None,
                      trial_function=lambda p: p["a"] * 10 + p["b"])
    exp = _run(cfg)
    assert sorted(d.value for d in exp.export_data()) == [10, 11, 20, 21, 30, 31]
    assert exp.get_status() == "DONE"


def _sleepy(params):
    for _ in range(600):
        time.sleep(0.05)
        nniray.report_intermediate_result(1.0)
    nniray.report_final_result(1.0)


def test_max_trial_duration_kills_the_trial(home):
    cfg = make_config(home, trialCommand=None, trial_function=_sleepy, maxTrialNumber=2, maxTrialDuration="1s")
    exp = _run(cfg)
    for t in exp.list_trial_jobs():
        assert t.status == "SYS_CANCELED" and "maxTrialDuration" in t.message
        assert t.endTime - t.startTime < 25  # killed, not let run its 30 s
    write_trial(home, "import time\ntime.sleep(60)\n", name="slow.py")
    exp = _run(make_config(home, trialCommand=f"{sys.executable} slow.py", maxTrialNumber=1, maxTrialDuration="1s"))
    (t,) = exp.list_trial_jobs()
    assert t.status == "SYS_CANCELED" and t.endTime - t.startTime < 50  # killed, not let run its 60 s


def _one_second(params):
    time.sleep(1.0)
    return params["x"]


def test_max_experiment_duration_stops_new_trials(home):
    # No maxTrialNumber: only the duration can end it.  The limit is set once trials flow, so
    # the test does not depend on how long the runners take to start on a loaded machine.
    cfg = make_config(home, trialCommand=None, trial_function=_one_second, maxTrialNumber=None, trialConcurrency=1)
    exp = Experiment(cfg)
    exp.start()
    try:
        deadline = time.time() + 120
        while not any(t.status == "SUCCEEDED" for t in exp.list_trial_jobs()) and time.time() < deadline:
            time.sleep(0.1)
        spent = exp.get_experiment_profile()["execDuration"]
        exp.update_max_experiment_duration(f"{int(spent) + 2}s")
        while exp.get_status() != "DONE" and time.time() < deadline:
            time.sleep(0.1)
        assert exp.get_status() == "DONE"
        jobs = exp.list_trial_jobs()
        assert {t.status for t in jobs} == {"SUCCEEDED"}  # the running trial was let finish
        n = len(jobs)
        time.sleep(2)
        assert len(exp.list_trial_jobs()) == n  # and nothing new starts after the limit
        assert exp.get_experiment_profile()["execDuration"] >= int(spent) + 2
    finally:
        exp.stop()


def _reports_x(params):
    for i in range(20):
        nniray.report_intermediate_result(params["x"])
        time.sleep(0.05)
    nniray.report_final_result(params["x"])


def test_assessor_bad_means_early_stopped(home):
    cfg = make_config(home, trialCommand=None, trial_function=_reports_x, maxTrialNumber=8,
                      assessor={"className": "stop_low_assessor.StopLow", "codeDirectory": str(ALGOS),
                                "classArgs": {"threshold": 0.5}})
    exp = _run(cfg)
    for t in exp.list_trial_jobs():
        x = t.hyperParameters[0]["parameters"]["x"]
        assert t.status == ("EARLY_STOPPED" if x < 0.5 else "SUCCEEDED"), (x, t.status)


# --------------------------------------------------------------------------- run-time updates
def _half_second(params):
    time.sleep(0.3)
    return params.get("x", params.get("y"))


def test_runtime_updates_take_effect(home):
    cfg = make_config(home, trialCommand=None, trial_function=_half_second, maxTrialNumber=4, trialConcurrency=1)
    exp = Experiment(cfg)
    exp.start()
    try:
        exp.update_trial_concurrency(3)
        exp.update_search_space({"y": {"_type": "choice", "_value": [7, 8]}})
        deadline = time.time() + 60
        while exp.get_status() != "DONE" and time.time() < deadline:
            time.sleep(0.2)
        assert exp.get_status() == "DONE"
        exp.update_max_trial_number(7)  # raising the limit after DONE runs more trials
        deadline = time.time() + 60
        while (len(exp.list_trial_jobs()) < 7 or exp.get_status() != "DONE") and time.time() < deadline:
            time.sleep(0.2)
        jobs = exp.list_trial_jobs()
        assert len(jobs) == 7
        later = [t for t in jobs if t.sequenceId >= 4]
        assert all(set(t.hyperParameters[0]["parameters"]) == {"y"} for t in later)
        assert exp.get_experiment_profile()["params"]["trialConcurrency"] == 3
        with pytest.raises(ExperimentError, match="searchSpace"):
            exp.update_search_space({"y": {"_type": "loguniform", "_value": [0, 1]}})
    finally:
        exp.stop()


# --------------------------------------------------------------------------- isolation and refusals
def _space_a(params):
    assert set(params) == {"a"}
    return params["a"]


def _space_b(params):
    assert set(params) == {"b"}
    return params["b"]


def test_two_experiments_on_one_cluster_do_not_mix(home):
    ca = make_config(home, trialCommand=None, trial_function=_space_a, maxTrialNumber=5,
                     searchSpace={"a": {"_type": "uniform", "_value": [0, 1]}})
    cb = make_config(home, trialCommand=None, trial_function=_space_b, maxTrialNumber=4,
                     searchSpace={"b": {"_type": "uniform", "_value": [5, 6]}})
    ea, eb = Experiment(ca), Experiment(cb)
    ea.start()
    eb.start()
    try:
        deadline = time.time() + 90
        while {ea.get_status(), eb.get_status()} != {"DONE"} and time.time() < deadline:
            time.sleep(0.2)
        assert [t.status for t in ea.list_trial_jobs()] == ["SUCCEEDED"] * 5
        assert [t.status for t in eb.list_trial_jobs()] == ["SUCCEEDED"] * 4
        assert all(0 <= d.value <= 1 for d in ea.export_data())
        assert all(5 <= d.value <= 6 for d in eb.export_data())
    finally:
        ea.stop()
        eb.stop()


def test_refusals_before_anything_runs(home):
    with pytest.raises(ConfigError, match="trialGpuNumber"):
        Experiment(make_config(home, trialGpuNumber=1)).start()
    with pytest.raises(ExperimentError, match="no experiment 'nosuchid'"):
        Experiment.resume("nosuchid", experiment_dir=home / "exps")
    with pytest.raises(ConfigError, match="unknown tuner name 'TPX'"):
        Experiment(make_config(home, tuner={"name": "TPX"})).start()
    with pytest.raises(ConfigError, match="classArgs.optimise_mode"):
        Experiment(make_config(home, tuner={"name": "Random", "classArgs": {"optimise_mode": "maximize"}})).start()
    with pytest.raises(ConfigError, match="not implemented yet"):
        Experiment(make_config(home, trainingService={"platform": "remote", "machineList": [
            {"host": "h", "user": "u"}]})).start()


def test_view_opens_a_stopped_experiment_read_only(home):
    exp = _run(make_config(home, trialCommand=None, trial_function=_returns_metric, maxTrialNumber=2))
    v = Experiment.view(exp.id, experiment_dir=home / "exps")
    assert v.get_status() == "VIEWED"
    assert len(v.list_trial_jobs()) == 2 and len(v.export_data()) == 2
    with pytest.raises(ExperimentError):
        v.update_trial_concurrency(3)
