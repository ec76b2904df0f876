"""The experiment metrics reach Ray's Prometheus endpoint: recorded inside a real actor (as the
controller does), read back over HTTP from the node's metrics export port."""
from __future__ import annotations

import re
import socket
import time
import urllib.request

import pytest

ray = pytest.importorskip("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def metrics_url():
    port = _free_port()
    ray.init(num_cpus=1, include_dashboard=False, _metrics_export_port=port, log_to_driver=False,
             _system_config={"metrics_report_interval_ms": 500})
    try:
        node = ray.nodes()[0]
        yield f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
    finally:
        ray.shutdown()


def _scrape_until(url: str, wanted: list[str], limit: float = 90) -> str:
    """The endpoint's text once every pattern in ``wanted`` is in it (Ray exports on an interval)."""
    deadline = time.time() + limit
    text = ""
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                text = r.read().decode()
        except OSError:
            text = ""
        if all(re.search(p, text, re.M) for p in wanted):
            return text
        time.sleep(0.5)
    missing = [p for p in wanted if not re.search(p, text, re.M)]
    raise AssertionError(f"metrics never showed {missing}; last scrape had "
                         f"{[l for l in text.splitlines() if 'nniray' in l][:20]}")


def _value(text: str, pattern: str) -> float:
    m = re.search(pattern + r"\s+([0-9.eE+-]+)$", text, re.M)
    assert m, pattern
    return float(m.group(1))


def test_metrics_recorded_in_an_actor_reach_the_prometheus_endpoint(metrics_url, tmp_path):
    @ray.remote(num_cpus=0)
    class Recorder:
        async def record(self, exp_dir: str):
            import asyncio
            from nniray.actors.metrics import ExperimentMetrics
            from nniray.storage.sqlite_store import ExperimentStore
            from nniray.storage.trial_store import TrialStatus

            # a store as the controller has it: 5 succeeded (two with known run times), 2 running, 1 failed
            store = ExperimentStore(exp_dir)
            for i, (status, final) in enumerate([("SUCCEEDED", 0.5)] * 4 + [("SUCCEEDED", 0.875), ("RUNNING", None),
                                                                           ("RUNNING", None), ("FAILED", None)]):
                store.add_trial(f"t{i}", i, i, {"parameters": {"x": i}}, status=status)
                if final is not None:
                    store.update_trial(f"t{i}", final=final)
            store.update_trial("t0", start_time=100.0, end_time=103.0)
            store.update_trial("t1", start_time=100.0, end_time=140.0)
            store.update_trial("t7", start_time=100.0, end_time=100.2)
            m = ExperimentMetrics("expAB12", optimize_mode="maximize")
            m.refresh(store, queue_length=3)  # what the controller's tick calls
            m.trial_ended(store, "t0", TrialStatus.SUCCEEDED)
            m.trial_ended(store, "t1", "SUCCEEDED")
            m.trial_ended(store, "t7", TrialStatus.FAILED)
            answer = await m.timed_suggest(asyncio.sleep(0.002, result=[{"x": 1}]))
            store.close()
            return answer

    rec = Recorder.remote()
    assert ray.get(rec.record.remote(str(tmp_path))) == [{"x": 1}]
    exp = r'experiment="expAB12"'
    text = _scrape_until(metrics_url, [
        r'^ray_nniray_trials\{[^}]*' + exp, r'^ray_nniray_best_metric\{[^}]*' + exp,
        r'^ray_nniray_trial_duration_seconds_count\{[^}]*', r'^ray_nniray_tuner_suggest_latency_seconds_count\{',
        r'^ray_nniray_controller_queue_length\{[^}]*' + exp, r'^ray_nniray_trials_finished(_total)?\{',
    ])

    def series(name: str, **tags: str) -> str:
        # Prometheus lists tags in any order: match each one inside the braces.
        return "^" + name + r"\{" + "".join(rf'(?=[^}}]*{k}="{v}")' for k, v in tags.items()) + r"[^}]*\}"

    assert _value(text, series("ray_nniray_trials", experiment="expAB12", status="RUNNING")) == 2
    assert _value(text, series("ray_nniray_trials", experiment="expAB12", status="SUCCEEDED")) == 5
    assert _value(text, series("ray_nniray_trials", experiment="expAB12", status="FAILED")) == 1
    # a status with no trial reads 0, not "absent"
    assert _value(text, series("ray_nniray_trials", experiment="expAB12", status="WAITING")) == 0
    assert _value(text, series("ray_nniray_best_metric", experiment="expAB12")) == pytest.approx(0.875)
    assert _value(text, series("ray_nniray_controller_queue_length", experiment="expAB12")) == 3
    assert _value(text, series("ray_nniray_trial_duration_seconds_count", experiment="expAB12", status="SUCCEEDED")) == 2
    # 3 s and 40 s: one in the <=5 s bucket, both in the <=60 s one
    assert _value(text, series("ray_nniray_trial_duration_seconds_bucket", experiment="expAB12", status="SUCCEEDED", le="5.0")) == 1
    assert _value(text, series("ray_nniray_trial_duration_seconds_bucket", experiment="expAB12", status="SUCCEEDED", le="60.0")) == 2
    assert _value(text, series("ray_nniray_tuner_suggest_latency_seconds_count", experiment="expAB12")) == 1


def test_recording_without_ray_metrics_never_raises(monkeypatch):
    """A broken metrics backend is logged, not raised into the controller."""
    from nniray.actors import metrics as mod

    def broken(name):
        raise RuntimeError("metrics agent gone")

    monkeypatch.setattr(mod, "_metric", broken)
    m = mod.ExperimentMetrics("expX")
    m.trials_by_status({"RUNNING": 1})
    m.trial_finished("SUCCEEDED", 1.0)
    m.suggest_latency(0.1)
    m.queue_length(0)
    assert m._warned


def _square(params):
    return params["x"] ** 2


def test_a_running_experiments_controller_exports_its_metrics(metrics_url, tmp_path, monkeypatch):
    """End to end: the controller actor of a real experiment records them (no test code in Ray)."""
    monkeypatch.setenv("NNIRAY_HOME", str(tmp_path / "home"))
    from nniray.config import build_config
    from nniray.experiment import Experiment

    exp = Experiment(build_config({
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "tuner": {"name": "Random", "classArgs": {"seed": 0, "optimize_mode": "minimize"}},
        "trialConcurrency": 1, "maxTrialNumber": 5, "experimentWorkingDirectory": str(tmp_path / "exps"),
        "trial_function": _square}))
    exp.start()
    try:
        deadline = time.time() + 120
        while exp.get_status() != "DONE" and time.time() < deadline:
            time.sleep(0.3)
        assert exp.get_status() == "DONE"
        values = [r.value for r in exp.export_data()]
        best = min(v if isinstance(v, (int, float)) else v["default"] for v in values)
        exp_tag = f'experiment="{exp.id}"'
        text = _scrape_until(metrics_url, [
            r'^ray_nniray_trials\{(?=[^}]*' + exp_tag + r')(?=[^}]*status="SUCCEEDED")[^}]*\}\s+5(\.0)?$',
            r'^ray_nniray_tuner_suggest_latency_seconds_count\{[^}]*' + exp_tag,
            r'^ray_nniray_trial_duration_seconds_count\{[^}]*' + exp_tag,
            r'^ray_nniray_controller_queue_length\{[^}]*' + exp_tag,
        ])
        assert _value(text, r'^ray_nniray_best_metric\{[^}]*' + exp_tag + r'[^}]*\}') == pytest.approx(best)
        assert _value(text, r'^ray_nniray_trial_duration_seconds_count\{(?=[^}]*' + exp_tag
                      + r')(?=[^}]*status="SUCCEEDED")[^}]*\}') == 5
    finally:
        exp.stop()
