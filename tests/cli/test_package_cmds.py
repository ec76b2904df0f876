"""Issue 10 CLI verbs: experiment save/load (with and without code), config show, platform clean,
tensorboard start/stop (real `nniray` processes, a real TensorBoard)."""
from __future__ import annotations

import json
import time
import urllib.request
import zipfile

import pytest
import yaml

from nniray.storage import ExperimentRegistry, ExperimentStore

from cli_helpers import free_port


@pytest.fixture
def stopped(cli, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text("print('hi')\n")
    d = tmp_path / "exps" / "pkg1"
    store = ExperimentStore(d)
    store.set_meta("config", {"experimentName": "pkg", "trialCommand": "python3 trial.py", "trialConcurrency": 1,
                              "trialCodeDirectory": str(code), "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
                              "tuner": {"name": "Random"}})
    store.set_meta("status", "DONE")
    store.add_trial("T1", 0, 0, {"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"x": 0.5}},
                    status="SUCCEEDED")
    store.add_metric("T1", 0, "FINAL", 0, 0.25, timestamp=1000.0)
    store.close()
    (d / "trials" / "T1").mkdir(parents=True)
    (d / "trials" / "T1" / "trial.log").write_text("trial log\n")
    ExperimentRegistry(cli.home / "experiments.json").update(
        "pkg1", logDir=str(d), status="DONE", pid=None, startTime=1000.0, endTime=1010.0, experimentName="pkg")
    return d, code


def test_save_and_load_with_code(cli, stopped, tmp_path):
    d, code = stopped
    r = cli("experiment", "save", "pkg1", "--path", str(tmp_path / "out"), "--saveCodeDir")
    assert r.returncode == 0, r.stderr
    pkg = tmp_path / "out" / "nniray_experiment_pkg1.zip"
    names = zipfile.ZipFile(pkg).namelist()
    assert "experiment/experiment.db" in names and "code/trial.py" in names and "experiment/trials/T1/trial.log" in names
    # load it on "another machine": a fresh home and folders
    other = tmp_path / "other"
    cli.env["NNIRAY_HOME"] = str(other / "home")
    r = cli("experiment", "load", "--path", str(pkg), "--logDir", str(other / "exps"))
    assert r.returncode == 1 and "--codeDir is required" in r.stderr
    r = cli("experiment", "load", "--path", str(pkg), "--logDir", str(other / "exps"), "--codeDir", str(other / "code"))
    assert r.returncode == 0, r.stderr
    assert (other / "code" / "trial.py").read_text() == "print('hi')\n"
    store = ExperimentStore(other / "exps" / "pkg1", readonly=True)
    assert store.get_meta("config")["trialCodeDirectory"] == str((other / "code").resolve())
    assert len(store.metrics("T1")) == 1  # the results came along
    store.close()
    listing = cli("experiment", "list", "--all")
    assert "pkg1" in listing.stdout
    shown = cli("config", "show", "pkg1")
    assert shown.returncode == 0 and yaml.safe_load(shown.stdout)["experimentName"] == "pkg"
    r = cli("experiment", "load", "--path", str(pkg), "--logDir", str(other / "exps2"), "--codeDir", str(other / "c2"))
    assert r.returncode == 1 and "already known" in r.stderr


def test_save_without_code_and_load_with_a_search_space(cli, stopped, tmp_path):
    r = cli("experiment", "save", "pkg1", "--path", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    pkg = tmp_path / "out" / "nniray_experiment_pkg1.zip"
    assert not any(n.startswith("code/") for n in zipfile.ZipFile(pkg).namelist())
    cli.env["NNIRAY_HOME"] = str(tmp_path / "h2")
    ss = tmp_path / "ss.json"
    ss.write_text(json.dumps({"y": {"_type": "choice", "_value": [1, 2]}}))
    r = cli("experiment", "load", "--path", str(pkg), "--logDir", str(tmp_path / "e2"), "--searchSpacePath", str(ss))
    assert r.returncode == 0, r.stderr
    store = ExperimentStore(tmp_path / "e2" / "pkg1", readonly=True)
    assert store.get_meta("config")["searchSpace"] == {"y": {"_type": "choice", "_value": [1, 2]}}
    store.close()


def test_platform_clean(cli, tmp_path):
    local = tmp_path / "local.yml"
    local.write_text(yaml.safe_dump({"trialCommand": "x", "trialConcurrency": 1, "searchSpace": {},
                                     "tuner": {"name": "Random"}, "trainingService": {"platform": "local"}}))
    import tempfile
    left = tempfile.mkdtemp(prefix="nniray-annotation-")
    r = cli("platform", "clean", "--config", str(local))
    assert r.returncode == 0 and "removed" in r.stdout
    import os
    assert not os.path.exists(left)
    remote = tmp_path / "remote.yml"
    remote.write_text(yaml.safe_dump({"trialCommand": "x", "trialConcurrency": 1, "searchSpace": {},
                                      "tuner": {"name": "Random"},
                                      "trainingService": {"platform": "remote",
                                                          "machineList": [{"host": "h", "user": "u"}]}}))
    r = cli("platform", "clean", "--config", str(remote))
    assert r.returncode == 1 and "remote" in r.stderr


@pytest.mark.slow  # a real TensorBoard takes ~15 s to start on the shared machine
def test_tensorboard_start_and_stop(cli, stopped):
    from tensorboardX import SummaryWriter
    d, _ = stopped
    w = SummaryWriter(str(d / "trials" / "T1" / "tensorboard"))
    w.add_scalar("loss", 0.5, 1)
    w.close()
    port = free_port()
    r = cli("tensorboard", "start", "pkg1", "--port", str(port))
    assert r.returncode == 0, r.stderr
    try:
        body = None
        for _ in range(150):  # TensorBoard takes a few seconds to serve
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None and "T1" in body.decode()
        again = cli("tensorboard", "start", "pkg1", "--port", str(port))
        assert again.returncode == 1 and "already runs" in again.stderr
    finally:
        r = cli("tensorboard", "stop", "pkg1")
    assert r.returncode == 0, r.stderr
    assert cli("tensorboard", "stop", "pkg1").returncode == 1


def test_tensorboard_without_logs_says_where_to_write_them(cli, stopped):
    r = cli("tensorboard", "start", "pkg1", "--port", str(free_port()))
    assert r.returncode == 1 and "NNI_OUTPUT_DIR" in r.stderr
