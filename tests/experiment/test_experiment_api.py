"""Issue 10: NNI's Experiment API details (no Ray needed): Ctrl-C in run() returns cleanly,
metadata reads, run_or_resume's choice, a missing trialCodeDirectory refused at start."""
from __future__ import annotations

import pytest

from nniray.config import ConfigError
from nniray.experiment import Experiment
from nniray.storage import ExperimentRegistry, ExperimentStore


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("NNIRAY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


class FakeRuntime:
    address = "fake"

    def __init__(self):
        self.stopped = False

    def stop(self):
        self.stopped = True
        return "STOPPED"


def test_ctrl_c_in_run_stops_and_returns_without_a_traceback(home, capsys):
    exp = Experiment("local", id="ctrlc")
    exp._runtime = runtime = FakeRuntime()

    def interrupted():
        raise KeyboardInterrupt
    exp._watch = interrupted
    assert exp.run() is False  # NNI: no exception escapes
    assert runtime.stopped and "Interrupted" in capsys.readouterr().out


def test_stop_keeps_the_end_time_the_store_recorded(home, tmp_path):
    exp = Experiment("local", id="ended")
    exp._runtime = FakeRuntime()
    store = ExperimentStore(tmp_path / "ended")
    store.set_meta("end_time", 1234.5)
    exp._store = store
    exp.stop()
    assert ExperimentRegistry(home / "experiments.json").get("ended")["endTime"] == 1234.5


def test_experiment_metadata(home):
    reg = ExperimentRegistry(home / "experiments.json")
    reg.update("a1", status="DONE", logDir="/x/a1", port=8080)
    reg.update("b2", status="STOPPED", logDir="/x/b2")
    exp = Experiment("local", id="a1")
    assert exp.get_experiment_metadata()["port"] == 8080
    assert exp.get_experiment_metadata("b2")["status"] == "STOPPED"
    assert [m["id"] for m in exp.get_all_experiments_metadata()] == ["a1", "b2"]
    with pytest.raises(Exception, match="no experiment 'zz'"):
        exp.get_experiment_metadata("zz")


def test_run_or_resume_resumes_an_existing_experiment_and_runs_a_new_one(home, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(Experiment, "run", lambda self, port=None, wait=True, debug=False: calls.append(("run", self.id)))

    def fake_resume(cls, experiment_id, **kw):
        calls.append(("resume", experiment_id))
        e = Experiment("local", id=experiment_id)
        return e
    monkeypatch.setattr(Experiment, "resume", classmethod(fake_resume))
    d = tmp_path / "exps" / "old1"
    ExperimentStore(d).close()
    ExperimentRegistry(home / "experiments.json").update("old1", logDir=str(d), status="STOPPED")
    Experiment("local", id="old1").run_or_resume()
    Experiment("local", id="new1").run_or_resume()
    assert calls == [("resume", "old1"), ("run", "old1"), ("run", "new1")]


def test_start_refuses_a_missing_trial_code_directory_before_anything_runs(home, tmp_path):
    exp = Experiment("local")
    exp.config.trial_command = "python3 trial.py"
    exp.config.trial_code_directory = tmp_path / "nowhere"
    exp.config.trial_concurrency = 1
    exp.config.search_space = {}
    exp.config.tuner.name = "Random"
    with pytest.raises(ConfigError, match="trialCodeDirectory.*does not exist"):
        exp.start()
