"""Nothing a command trial starts outlives it, its stop, or its runner (real processes, checked
by PID).  The trials spawn ``sleep 1000`` grandchildren: one plain, one in its own session
(``setsid``), one double-forked so that it is re-parented away from the trial."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from nniray.actors import trial_records as records
from nniray.actors.trial_runner import TrialRunner

PY = sys.executable

SPAWNER = """
import json, os, subprocess, sys, time
import nniray as nni
pids = [subprocess.Popen(["sleep", "1000"]).pid,
        subprocess.Popen(["sleep", "1000"], start_new_session=True).pid]
r, w = os.pipe()
if os.fork() == 0:  # double fork: the grandchild's parent exits at once
    if os.fork() == 0:
        os.setsid()
        os.write(w, str(os.getpid()).encode())
        os.execvp("sleep", ["sleep", "1000"])
    os._exit(0)
pids.append(int(os.read(r, 32)))
pids.append(os.getpid())
with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "pids.json"), "w") as f:
    json.dump(pids, f)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"


def wait_for(pred, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def _spec(tmp_path, body, tid="sp001", **over):
    (tmp_path / "trial.py").write_text(SPAWNER + textwrap.dedent(body))
    spec = {"trial_id": tid, "sequence_id": 0, "hyper_params": {"parameter_id": 0, "parameters": {}},
            "trial_dir": str(tmp_path / "trials" / tid), "code_dir": str(tmp_path), "function": None,
            "command": f"{PY} trial.py", "attempt": 0}
    spec.update(over)
    return spec


def _pids(spec):
    return json.loads(open(os.path.join(spec["trial_dir"], "pids.json")).read())


def test_processes_a_trial_started_end_when_it_ends(tmp_path):
    spec = _spec(tmp_path, "nni.report_final_result(1)\n")
    out = TrialRunner(None, 0, "exp").run(spec)
    assert out["status"] == "SUCCEEDED"
    pids = _pids(spec)
    assert len(pids) == 4
    assert [p for p in pids if alive(p)] == []  # checked right after run() returned: no wait


def test_a_trial_killed_at_max_trial_duration_takes_every_process_with_it(tmp_path):
    # The trial ignores SIGTERM, as do its setsid grandchildren: SIGKILL after the grace period.
    spec = _spec(tmp_path, """
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        nni.report_intermediate_result(1)
        time.sleep(1000)
        """, max_trial_seconds=10)  # room for the trial to start on a loaded machine
    out = TrialRunner(None, 0, "exp").run(spec)
    assert out["status"] == "SYS_CANCELED" and "maxTrialDuration" in out["message"]
    assert [p for p in _pids(spec) if alive(p)] == []


def test_a_stopped_trial_takes_every_process_with_it(tmp_path):
    spec = _spec(tmp_path, "time.sleep(1000)\n")
    runner = TrialRunner(None, 0, "exp")
    pids_file = os.path.join(spec["trial_dir"], "pids.json")
    import threading
    result = {}
    th = threading.Thread(target=lambda: result.update(runner.run(spec)))
    th.start()
    assert wait_for(lambda: os.path.exists(pids_file) and os.path.getsize(pids_file) > 0)
    assert runner.stop(spec["trial_id"], "USER_CANCELED", "killed by user")
    th.join(60)
    assert result["status"] == "USER_CANCELED"
    assert [p for p in _pids(spec) if alive(p)] == []


RUNNER_SCRIPT = """
import sys
from nniray.actors.trial_runner import TrialRunner
spec = {spec!r}
print("RUNNING", flush=True)
TrialRunner(None, 0, "exp").run(spec)
"""

REPORTER = """
# Report as fast as possible, writing a side log of every value *after* the report call
# returned, until killed: whatever the side log holds must be recovered from the metrics file.
side = open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "side.log"), "a")
i = 0
while True:
    nni.report_intermediate_result(i)
    side.write(f"{i}\\n")
    side.flush()
    i += 1
    time.sleep(0.001)
"""


def test_a_runner_killed_takes_its_trial_with_it_and_nothing_reported_is_lost(tmp_path):
    spec = _spec(tmp_path, REPORTER)
    script = tmp_path / "runner.py"
    script.write_text(RUNNER_SCRIPT.format(spec=spec))
    proc = subprocess.Popen([PY, str(script)], stdout=subprocess.PIPE, start_new_session=True)
    side = os.path.join(spec["trial_dir"], "side.log")
    try:
        assert wait_for(lambda: os.path.exists(side) and os.path.getsize(side) > 200)
        os.kill(proc.pid, signal.SIGKILL)  # the runner dies; nobody reads the metrics file now
        proc.wait()
        pids = _pids(spec)
        assert wait_for(lambda: not any(alive(p) for p in pids)), [p for p in pids if alive(p)]
    finally:
        for p in _pids(spec) if os.path.exists(os.path.join(spec["trial_dir"], "pids.json")) else []:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    events, errors = records.recover(spec["trial_dir"], spec["trial_id"], 0, 0)
    assert errors == []
    reported = [int(x) for x in open(side).read().split()]
    values = [e["value"] for e in events]
    assert values[:len(reported)] == reported  # every value the trial saw reported is there, in order
    assert [e["sequence"] for e in events] == list(range(len(events)))
    assert os.path.exists(records.ended_marker(spec["trial_dir"], 0))
