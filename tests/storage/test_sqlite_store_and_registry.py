"""The SQLite store: duplicate reports recorded once, fencing of a stale writer, readers while writing."""
import pytest

from nniray.storage import ExperimentRegistry, ExperimentStore, FencedError


def test_metrics_are_recorded_once_and_results_exported(tmp_path):
    s = ExperimentStore(tmp_path)
    with s.transaction():
        s.add_trial("a", 0, 0, {"parameter_id": 0, "parameters": {"x": 1}})
        assert s.add_metric("a", 0, "FINAL", 0, 0.5)
    assert not s.add_metric("a", 0, "FINAL", 0, 0.5)  # a re-sent report
    s.update_trial("a", status="SUCCEEDED", final=0.5)
    r = ExperimentStore(tmp_path, readonly=True)
    assert r.completed_results() == [{"parameter": {"x": 1}, "value": 0.5, "trialJobId": "a"}]
    assert r.status_counts() == {"SUCCEEDED": 1}
    with pytest.raises(FileNotFoundError):
        ExperimentStore(tmp_path / "none", readonly=True)


def test_a_stale_controller_is_fenced(tmp_path):
    old = ExperimentStore(tmp_path)
    old.claim()
    old.set_meta("status", "RUNNING")
    new = ExperimentStore(tmp_path)
    new.claim()
    with pytest.raises(FencedError):
        old.set_meta("status", "DONE")
    with pytest.raises(FencedError):
        with old.transaction():
            old.add_trial("b", 1, 1, {})
    assert new.get_meta("status") == "RUNNING" and new.count_trials() == 0


def test_registry_records_and_removes(tmp_path):
    reg = ExperimentRegistry(tmp_path / "e.json")
    reg.update("abc12345", status="RUNNING", port=8080)
    reg.update("abc12345", status="STOPPED")
    assert reg.get("abc12345") == {"id": "abc12345", "status": "STOPPED", "port": 8080}
    reg.remove("abc12345")
    assert reg.all() == {}
