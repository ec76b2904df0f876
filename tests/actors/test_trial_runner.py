"""The trial runner on its own (no Ray): real subprocesses, real files, real threads."""
from __future__ import annotations

import json
import os
import sys
import threading
import time

import numpy as np
import pytest

from nniray import trial as nni
from nniray.actors import trial_records as records
from nniray.actors.trial_runner import TrialRunner

PY = sys.executable


def _spec(tmp_path, tid="t0001", attempt=0, **over):
    spec = {"trial_id": tid, "sequence_id": 0, "hyper_params": {"parameter_id": 0, "parameters": {"x": 1}},
            "trial_dir": str(tmp_path / "trials" / tid), "code_dir": str(tmp_path), "function": None,
            "attempt": attempt}
    spec.update(over)
    return spec


def _command(tmp_path, body: str, name="trial.py") -> str:
    (tmp_path / name).write_text("import nniray as nni\n" + body)
    return f"{PY} {name}"


def _stored(outcome):
    return [(e["type"], e["sequence"], e["value"]) for e in outcome["events"]]


# ------------------------------------------------------------------ malformed records (item 5)
@pytest.mark.parametrize("line, why", [
    ('{"type": "PERIODICAL", "value": 1', "not valid JSON"),
    ('{"type": "FINAL", "value": ' + "9" * 400 + "}", "beyond float range"),
    ('{"type": "FINAL", "value": NaN}', "not finite"),
    ('{"type": "PERIODICAL", "value": 1e999}', "not finite"),
    ('{"type": "REQUEST", "value": 1}', "unknown record type"),
    ('[1, 2]', "JSON object"),
    ('{"type": "FINAL", "value": {"acc": 1}}', "no 'default'"),
])
def test_a_malformed_record_fails_the_trial_with_the_line_and_the_reason(tmp_path, line, why):
    # A non-Python trial writes the metrics file itself; what it wrote before the bad line counts.
    script = tmp_path / "w.sh"
    script.write_text("m=$NNI_SYS_DIR/.nni/metrics\n"
                      "echo '{\"type\": \"PERIODICAL\", \"value\": 0.5}' >> $m\n"
                      f"cat >> $m <<'END'\n{line}\nEND\n"
                      "sleep 60\n")
    out = TrialRunner(None, 0, "exp").run(_spec(tmp_path, command=f"bash {script}"))
    assert out["status"] == "FAILED"
    assert "line 2" in out["message"] and why in out["message"] and ".nni/metrics" in out["message"]
    assert _stored(out) == [("PERIODICAL", 0, 0.5)]  # the bad record is never sent, the good one is
    assert not any(json.dumps(e["value"]).lower() in ("infinity", "nan") for e in out["events"])


def test_a_second_final_record_is_malformed(tmp_path):
    cmd = ("echo '{\"type\": \"FINAL\", \"value\": 1}' >> $NNI_SYS_DIR/.nni/metrics; "
           "echo '{\"type\": \"FINAL\", \"value\": 2}' >> $NNI_SYS_DIR/.nni/metrics")
    out = TrialRunner(None, 0, "exp").run(_spec(tmp_path, command=cmd))
    assert out["status"] == "FAILED" and "second FINAL" in out["message"]
    assert _stored(out) == [("FINAL", 0, 1)]


# ------------------------------------------------------------------ outcomes (item 6)
def test_sys_exit_zero_after_a_final_succeeds_in_both_kinds_of_trial(tmp_path):
    runner = TrialRunner(None, 0, "exp")
    cmd = _command(tmp_path, "import sys\nnni.report_final_result(0.25)\nsys.exit(0)\n")
    out = runner.run(_spec(tmp_path, "cmd01", command=cmd))
    assert (out["status"], out["exit_code"], _stored(out)) == ("SUCCEEDED", 0, [("FINAL", 0, 0.25)])

    def fn(params):
        nni.report_final_result(0.25)
        sys.exit(0)
    out = runner.run(_spec(tmp_path, "fn001", function=fn))
    assert (out["status"], out["exit_code"], _stored(out)) == ("SUCCEEDED", 0, [("FINAL", 0, 0.25)])

    def bare_exit():
        sys.exit()
    assert runner.run(_spec(tmp_path, "fn002", function=bare_exit))["status"] == "SUCCEEDED"


def test_sys_exit_nonzero_fails_a_function_trial_with_its_code(tmp_path):
    def fn():
        nni.report_intermediate_result(1)
        sys.exit(3)
    out = TrialRunner(None, 0, "exp").run(_spec(tmp_path, function=fn))
    assert (out["status"], out["exit_code"]) == ("FAILED", 3)
    assert "exit code 3" in out["message"]


@pytest.mark.parametrize("final", [np.float32(0.5), np.array(0.5), np.array([0.5]), np.array([[0.5]]),
                                   {"default": np.float32(0.5), "loss": np.array([2.0])}])
def test_a_numpy_final_is_taken_as_a_number(tmp_path, final):
    out = TrialRunner(None, 0, "exp").run(_spec(tmp_path, function=lambda: nni.report_final_result(final)))
    assert out["status"] == "SUCCEEDED"
    (ev,) = out["events"]
    value = ev["value"]["default"] if isinstance(ev["value"], dict) else ev["value"]
    assert value == 0.5 and type(value) is float
    json.dumps(ev["value"], allow_nan=False)


def test_a_numpy_array_of_several_values_is_refused_with_its_size(tmp_path):
    out = TrialRunner(None, 0, "exp").run(_spec(tmp_path, function=lambda: nni.report_final_result(np.ones(3))))
    assert out["status"] == "FAILED" and "numpy array of 3 elements" in out["message"]


# ------------------------------------------------------------------ threads (item 4)
def test_a_thread_started_by_a_function_trial_reports_into_it(tmp_path):
    def fn(params):
        def work():
            for i in range(3):
                nni.report_intermediate_result(i)
            nni.report_final_result(params["x"])
        t = threading.Thread(target=work)
        t.start()
        t.join()
    out = TrialRunner(None, 0, "exp").run(_spec(tmp_path, function=fn))
    assert out["status"] == "SUCCEEDED"
    assert _stored(out) == [("PERIODICAL", 0, 0), ("PERIODICAL", 1, 1), ("PERIODICAL", 2, 2), ("FINAL", 0, 1)]


def test_a_thread_left_running_by_an_ended_trial_does_not_report_into_the_next(tmp_path, capsys):
    go, done = threading.Event(), threading.Event()

    def leaky():
        def late():
            go.wait(30)
            nni.report_intermediate_result(99)
            done.set()
        threading.Thread(target=late, daemon=True).start()

    def second():
        go.set()
        done.wait(30)
        nni.report_final_result(1)

    runner = TrialRunner(None, 0, "exp")
    assert runner.run(_spec(tmp_path, "lk001", function=leaky))["status"] == "SUCCEEDED"
    out = runner.run(_spec(tmp_path, "nx001", function=second))
    assert done.is_set()
    assert _stored(out) == [("FINAL", 0, 1)]
    assert "standalone" in capsys.readouterr().out


# ------------------------------------------------------------------ persisted reports (item 3)
def test_each_function_trial_report_is_in_its_metrics_file_before_it_is_sent(tmp_path):
    seen_in_file = []

    def fn():
        for i in range(4):
            nni.report_intermediate_result(i / 10)
        nni.report_final_result({"default": 0.9, "extra": [1, 2]})

    runner = TrialRunner(None, 0, "exp")
    spec = _spec(tmp_path, function=fn)
    original = runner._outbox.put

    def put(ev):  # when an event reaches the outbox, the file already holds it
        path = records.metrics_path(spec["trial_dir"], 0)
        seen_in_file.append(len(open(path).read().splitlines()))
        original(ev)
    runner._outbox.put = put
    out = runner.run(spec)
    assert seen_in_file == [1, 2, 3, 4, 5]
    recovered, errors = records.recover(spec["trial_dir"], spec["trial_id"], 0, 0)
    assert errors == []
    key = lambda e: (e["type"], e["sequence"], json.dumps(e["value"]), e["attempt"])  # noqa: E731
    assert sorted(map(key, recovered)) == sorted(map(key, out["events"]))


# ------------------------------------------------------------------ attempts (item 2)
def test_each_attempt_has_its_own_sys_dir_and_metrics_file(tmp_path):
    cmd = _command(tmp_path, "import os\nnni.report_intermediate_result(int(os.environ['NNIRAY_TRIAL_ATTEMPT']))\n"
                             "print(os.environ['NNI_SYS_DIR'], os.environ['NNI_OUTPUT_DIR'])\n"
                             "nni.report_final_result(nni.get_next_parameter()['x'])\n")
    runner = TrialRunner(None, 0, "exp")
    first = runner.run(_spec(tmp_path, attempt=0, command=cmd))
    runner.ack(["t0001"])
    second = runner.run(_spec(tmp_path, attempt=1, command=cmd))
    assert _stored(first) == [("PERIODICAL", 0, 0), ("FINAL", 0, 1)]
    assert _stored(second) == [("PERIODICAL", 0, 1), ("FINAL", 0, 1)]  # not attempt 0's records again
    assert {e["attempt"] for e in first["events"]} == {0} and {e["attempt"] for e in second["events"]} == {1}
    trial_dir = tmp_path / "trials" / "t0001"
    log = (trial_dir / "trial.log").read_text().split()
    assert log == [str(trial_dir), str(trial_dir), str(trial_dir / "attempt-1"), str(trial_dir)]
    assert len(records.recover(trial_dir, "t0001", 0, 0)[0]) == 2
    assert len(records.recover(trial_dir, "t0001", 0, 1)[0]) == 2
