"""CLI behaviour that needs no daemon: usage and user errors, algorithms, and the read-only
commands on a stopped experiment written through the store's own API."""
from __future__ import annotations

import csv
import json
import socket
import sys
import time
from pathlib import Path

import pytest

from nniray.storage import ExperimentRegistry, ExperimentStore

from cli_helpers import write_experiment

# (x, final metric, status) of a stopped minimize experiment; trial C failed without a result.
TRIALS = [("A", 0.5, {"default": 3.0, "acc": 0.1}, "SUCCEEDED"), ("B", 0.1, 1.0, "SUCCEEDED"),
          ("C", 0.9, None, "FAILED"), ("D", 0.7, {"default": 2.0, "acc": 0.7}, "SUCCEEDED")]


@pytest.fixture
def stopped(cli, tmp_path):
    """A finished experiment 'offline1' (optimize_mode minimize), registered as stopped."""
    d = tmp_path / "exps" / "offline1"
    store = ExperimentStore(d)
    store.set_meta("config", {"experimentName": "off", "trialCommand": "python3 t.py", "trialConcurrency": 1,
                              "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
                              "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "minimize"}}})
    store.set_meta("search_space", {"x": {"_type": "uniform", "_value": [0, 1]}})
    store.set_meta("status", "DONE")
    store.set_meta("start_time", 1000.0)
    store.set_meta("end_time", 1010.0)
    store.set_meta("exec_duration", 9.6)
    for seq, (tid, x, final, status) in enumerate(TRIALS):
        store.add_trial(tid, seq, seq, {"parameter_id": seq, "parameter_source": "algorithm", "parameters": {"x": x}},
                        status="RUNNING")
        for i in range(2):
            store.add_metric(tid, seq, "PERIODICAL", i, x * i, timestamp=1001.0 + seq)
        if final is not None:
            store.add_metric(tid, seq, "FINAL", 0, final, timestamp=1002.0 + seq)
        store.update_trial(tid, status=status, start_time=1001.0 + seq, end_time=1003.0 + seq, final=final)
        tdir = d / "trials" / tid
        tdir.mkdir(parents=True)
        (tdir / "trial.log").write_text("".join(f"line {i} of {tid}\n" for i in range(30)))
        (tdir / "stderr").write_text(f"oops from {tid}\n")
    (d / "log").mkdir()
    (d / "log" / "nniray.stdout").write_text("".join(f"out {i}\n" for i in range(10)))
    (d / "log" / "nniray.stderr").write_text("err 0\nerr 1\n")
    store.close()
    ExperimentRegistry(cli.home / "experiments.json").update(
        "offline1", logDir=str(d), status="DONE", pid=None, port=18999, startTime=1000.0, endTime=1010.0,
        experimentName="off", platform="local")
    return d


def test_version_and_usage(cli):
    import nniray
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == nniray.__version__
    r = cli("create")
    assert r.returncode == 2 and "--config" in r.stderr
    r = cli("frobnicate")
    assert r.returncode == 2


def test_resume_unknown_id_is_one_line_exit_1(cli):
    r = cli("resume", "nosuchid")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["ERROR: no experiment with id 'nosuchid' (see `nniray experiment list --all`)"]
    assert "Traceback" not in r.stderr


def test_resume_of_a_function_trial_experiment_is_refused(cli, stopped):
    store = ExperimentStore(stopped)
    cfg = store.get_meta("config")
    del cfg["trialCommand"]
    store.set_meta("config", cfg)
    store.close()
    r = cli("resume", "offline1", "-p", "18996")
    assert r.returncode == 1 and "Python function trial" in r.stderr and "trial_function" in r.stderr


def test_bad_config_names_the_field(cli, tmp_path):
    cfg = write_experiment(tmp_path / "bad")
    cfg.write_text(cfg.read_text().replace("maxTrialNumber", "maxTrialNumbr"))
    r = cli("create", "--config", str(cfg), "--port", "18998")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ")
    assert "maxTrialNumbr" in lines[0] and "maxTrialNumber" in lines[0]
    assert not (tmp_path / "bad" / "exps").exists()  # nothing was started


def test_bad_tuner_args_fail_before_start(cli, tmp_path):
    cfg = write_experiment(tmp_path / "bad2")
    cfg.write_text(cfg.read_text().replace("seed: 7", "sed: 7"))
    r = cli("create", "-c", str(cfg), "-p", "18997")
    assert r.returncode == 1 and "sed" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_busy_port_is_named(cli, tmp_path):
    cfg = write_experiment(tmp_path / "busy")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = cli("create", "-c", str(cfg), "-p", str(port))
    assert r.returncode == 1
    assert f"port {port}" in r.stderr and "--port" in r.stderr


def test_daemon_names_a_busy_port(cli, stopped):
    import subprocess
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "nniray.cli.daemon", "view", "--id", "offline1", "--port", str(port)],
                           env=cli.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.startswith(f"nniray-daemon-error: port {port} is not available") and "--port" in r.stderr


def test_stop_and_update_need_a_running_experiment(cli, stopped):
    r = cli("stop")
    assert r.returncode == 1 and "no experiment is running" in r.stderr
    r = cli("update", "concurrency", "offline1", "-v", "3")
    assert r.returncode == 1 and "not running" in r.stderr and "resume" in r.stderr
    r = cli("update", "concurrency", "offline1", "-v", "zero")
    assert r.returncode == 1 and "positive integer" in r.stderr
    r = cli("update", "duration", "offline1", "-v", "5x")
    assert r.returncode == 1 and "duration" in r.stderr


def test_import_file_shape_is_checked(cli, tmp_path, stopped):
    f = tmp_path / "imp.json"
    f.write_text(json.dumps({"parameter": {"x": 1}}))
    r = cli("experiment", "import", "offline1", "-f", str(f))
    assert r.returncode == 1 and "must be a JSON list" in r.stderr
    f.write_text(json.dumps([{"parameter": {"x": 0.2}, "value": 1}, {"parameter": {"x": 1}}]))
    r = cli("experiment", "import", "offline1", "-f", str(f))
    assert r.returncode == 1 and "[1] has no 'value' key" in r.stderr
    f.write_text(json.dumps([{"parameter": {"x": 0.2}, "value": {"acc": 1}}]))
    r = cli("experiment", "import", "offline1", "-f", str(f))
    assert r.returncode == 1 and "[0].value must be a number or a dict with a numeric 'default'" in r.stderr
    f.write_text("[{not json")
    r = cli("experiment", "import", "offline1", "-f", str(f))
    assert r.returncode == 1 and "not valid JSON" in r.stderr
    f.write_text(json.dumps([{"parameter": {"x": 0.2}, "value": 0.5}]))
    r = cli("experiment", "import", "offline1", "-f", str(f))
    assert r.returncode == 1 and "not running" in r.stderr


def test_read_commands_on_a_stopped_experiment(cli, stopped, tmp_path):
    r = cli("experiment", "list")
    assert r.returncode == 0 and "no experiment running" in r.stderr
    r = cli("experiment", "list", "--all")
    assert r.returncode == 0 and "offline1" in r.stdout and "DONE" in r.stdout
    r = cli("experiment", "status", "off")  # a unique prefix is enough
    assert r.returncode == 0 and json.loads(r.stdout) == {"errors": [], "status": "DONE"}
    prof = json.loads(cli("experiment", "show", "offline1").stdout)
    assert prof["id"] == "offline1" and prof["execDuration"] == 10 and prof["nextSequenceId"] == 4
    assert prof["params"]["tuner"]["name"] == "TPE"

    trials = json.loads(cli("trial", "ls", "offline1", "--json").stdout)
    assert [t["trialJobId"] for t in trials] == ["A", "B", "C", "D"]
    a = trials[0]
    assert json.loads(a["hyperParameters"][0])["parameters"] == {"x": 0.5}
    assert json.loads(json.loads(a["finalMetricData"][0]["data"])) == {"default": 3.0, "acc": 0.1}
    assert a["logPath"] == str(stopped / "trials" / "A")
    # minimize: head = lowest default metric first; only trials with a final result
    head = json.loads(cli("trial", "ls", "offline1", "--head", "2", "--json").stdout)
    assert [t["trialJobId"] for t in head] == ["B", "D"]
    tail = json.loads(cli("trial", "ls", "offline1", "--tail", "5", "--json").stdout)
    assert [t["trialJobId"] for t in tail] == ["A", "D", "B"]
    r = cli("trial", "ls", "offline1", "--head", "1", "--tail", "1")
    assert r.returncode == 1 and "cannot be used together" in r.stderr
    table = cli("trial", "ls", "offline1").stdout
    assert all(t in table for t in ("SUCCEEDED", "FAILED", '{"x": 0.9}'))


def test_export_csv_and_json(cli, stopped, tmp_path):
    j = tmp_path / "out.json"
    r = cli("experiment", "export", "offline1", "-f", str(j), "--type", "json")
    assert r.returncode == 0
    assert json.loads(j.read_text()) == [
        {"parameter": {"x": 0.5}, "value": {"default": 3.0, "acc": 0.1}, "trialJobId": "A"},
        {"parameter": {"x": 0.1}, "value": 1.0, "trialJobId": "B"},
        {"parameter": {"x": 0.7}, "value": {"default": 2.0, "acc": 0.7}, "trialJobId": "D"}]
    c = tmp_path / "out.csv"
    r = cli("experiment", "export", "offline1", "-f", str(c), "--type", "csv", "--intermediate")
    assert r.returncode == 0
    rows = list(csv.DictReader(c.open()))
    assert list(rows[0]) == ["intermediate", "x", "default", "acc", "trialJobId", "reward"]
    assert rows[0] == {"intermediate": "[0.0, 0.5]", "x": "0.5", "default": "3.0", "acc": "0.1",
                       "trialJobId": "A", "reward": ""}
    assert rows[1]["reward"] == "1.0" and rows[1]["default"] == ""
    r = cli("experiment", "export", "offline1", "-f", str(c), "--type", "xml")
    assert r.returncode == 2


def test_logs(cli, stopped):
    r = cli("log", "stdout", "offline1", "--tail", "2")
    assert r.stdout.splitlines() == ["out 8", "out 9"]
    r = cli("log", "stdout", "offline1", "--head", "1")
    assert r.stdout.splitlines() == ["out 0"]
    r = cli("log", "stderr", "offline1", "--path")
    assert r.stdout.strip() == str(stopped / "log" / "nniray.stderr")
    r = cli("log", "trial", "offline1", "-T", "B", "--lines", "3")
    assert r.returncode == 0
    out = r.stdout
    assert f"path:{stopped / 'trials' / 'B'}" in out
    assert "line 27 of B\nline 28 of B\nline 29 of B" in out and "line 26 of B" not in out
    assert "oops from B" in out
    r = cli("log", "trial", "offline1", "-T", "Z")
    assert r.returncode == 1 and "trial id Z not found" in r.stderr
    r = cli("log", "trial", "offline1")
    assert all(f"id:{t}" in r.stdout for t in "ABCD")


def test_top_once(cli, stopped):
    r = cli("top", "offline1", "--iterations", "1", "-t", "0.1")
    assert r.returncode == 0 and "Id: offline1" in r.stdout and "FAILED" in r.stdout


def test_delete(cli, stopped):
    r = cli("experiment", "delete", "offline1")  # no terminal to confirm on
    assert r.returncode == 1 and "--yes" in r.stderr
    assert stopped.exists()
    r = cli("experiment", "delete", "offline1", input="n\n")
    assert stopped.exists()
    r = cli("experiment", "delete", "offline1", "-y")
    assert r.returncode == 0 and not stopped.exists()
    assert "offline1" not in cli.registry()


def test_algo_register_list_show_unregister(cli, tmp_path):
    pkg = tmp_path / "mytuners"
    pkg.mkdir()
    (pkg / "demo_tuner.py").write_text(
        "from nniray.tuner import Tuner\n"
        "class DemoTuner(Tuner):\n"
        "    def __init__(self, optimize_mode='maximize'):\n"
        "        self.mode = optimize_mode\n"
        "    def update_search_space(self, space):\n"
        "        self.space = space\n"
        "    def generate_parameters(self, parameter_id, **kw):\n"
        "        return {'x': 0.5}\n"
        "    def receive_trial_result(self, parameter_id, parameters, value, **kw):\n"
        "        pass\n")
    meta = tmp_path / "meta.yml"
    meta.write_text("algoType: tuner\nbuiltinName: DemoTuner\nclassName: demo_tuner.DemoTuner\n")
    cli.env["PYTHONPATH"] = str(pkg)
    r = cli("algo", "register", "--meta", str(meta))
    assert r.returncode == 0, r.stderr
    listing = cli("algo", "list").stdout
    row = [ln for ln in listing.splitlines() if "DemoTuner" in ln]
    assert len(row) == 1 and "User" in row[0] and "demo_tuner" in row[0] and "tuner" in row[0]
    assert "TPE" in listing and "Hyperband" in listing
    r = cli("algo", "show", "DemoTuner")
    assert r.returncode == 0 and "className: demo_tuner.DemoTuner" in r.stdout and "source: User" in r.stdout
    r = cli("algo", "unregister", "TPE")
    assert r.returncode == 1 and "built in" in r.stderr
    r = cli("algo", "unregister", "DemoTuner")
    assert r.returncode == 0
    assert "DemoTuner" not in cli("algo", "list").stdout
    r = cli("algo", "show", "DemoTuner")
    assert r.returncode == 1
    bad = tmp_path / "bad.yml"
    bad.write_text("algoType: tuner\nbuiltinName: X\n")
    r = cli("algo", "register", "--meta", str(bad))
    assert r.returncode == 1 and "className" in r.stderr


def test_read_commands_do_not_import_ray(stopped, cli):
    code = ("import sys, io, contextlib; from nniray.cli.main import main\n"
            "for argv in (['trial','ls','offline1'], ['experiment','show','offline1'], ['experiment','list','--all'],"
            " ['log','stdout','offline1']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()): assert main(argv) == 0, argv\n"
            "print('ray' in sys.modules)\n")
    import subprocess
    r = subprocess.run([sys.executable, "-c", code], env=cli.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
