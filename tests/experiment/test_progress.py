"""Issue 10 new-user bugs in the progress view: all trials failed says nothing useful; without a
TTY (or in Jupyter without ipywidgets) the redrawn lines collide."""
from __future__ import annotations

import io
import sys

from rich.console import Console

from nniray.experiment.progress import failure_hint, watch
from nniray.storage import ExperimentStore


class FakeExperiment:
    """What watch() reads: an id, a store, the experiment folder, a status that advances."""

    def __init__(self, store, exp_dir, statuses):
        self.id, self._store, self._exp_dir = "exp1", store, exp_dir
        self._statuses = list(statuses)

    def get_status(self):
        return self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0]

    def get_errors(self):
        return []


def _store(tmp_path, n_failed=3, n_ok=0):
    store = ExperimentStore(tmp_path / "exp1")
    store.set_meta("config", {"tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}})
    for i in range(n_failed + n_ok):
        tid = f"T{i}"
        store.add_trial(tid, i, i, {"parameters": {"x": i}}, status="RUNNING")
        if i < n_failed:
            store.update_trial(tid, status="FAILED", message=f"exit code 1: ZeroDivisionError in trial {i}")
        else:
            store.add_metric(tid, i, "FINAL", 0, 0.5, timestamp=1.0)
            store.update_trial(tid, status="SUCCEEDED", final=0.5)
    return store


def test_all_failed_shows_the_first_reason_and_its_log(tmp_path):
    store = _store(tmp_path)
    out = io.StringIO()
    watch(FakeExperiment(store, tmp_path / "exp1", ["RUNNING", "DONE"]), interval=0.01,
          console=Console(file=out, force_terminal=False, width=200))
    text = out.getvalue()
    assert "ZeroDivisionError in trial 0" in text
    assert str(tmp_path / "exp1" / "trials" / "T0" / "trial.log") in text


def test_no_hint_when_something_succeeded(tmp_path):
    assert failure_hint(_store(tmp_path, n_failed=2, n_ok=1), tmp_path) is None


def test_without_a_tty_each_change_is_one_whole_line(tmp_path):
    store = _store(tmp_path, n_failed=0, n_ok=2)
    out = io.StringIO()
    status = watch(FakeExperiment(store, tmp_path / "exp1", ["RUNNING", "RUNNING", "RUNNING", "DONE"]), interval=0.01,
                   console=Console(file=out, force_terminal=False, width=80))
    lines = out.getvalue().splitlines()
    assert status == "DONE"
    assert len(lines) == 2 and lines[0].endswith("best (maximize) 0.5") and "DONE: 2 done" in lines[1]
    assert "\x1b[" not in out.getvalue() and "\r" not in out.getvalue()  # no cursor tricks


def test_jupyter_without_ipywidgets_gets_plain_text(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails, as without the package
    store = _store(tmp_path, n_failed=0, n_ok=1)
    out = io.StringIO()
    console = Console(file=out, force_jupyter=True, width=80)
    monkeypatch.setattr(console, "is_jupyter", True)
    watch(FakeExperiment(store, tmp_path / "exp1", ["DONE"]), interval=0.01, console=console)
    assert "DONE: 1 done" in out.getvalue()
