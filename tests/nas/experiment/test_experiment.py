"""Multi-trial NAS on the real runtime (real Ray, SQLite store, CLI)."""
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from nniray.nas import fixed_arch
from nniray.nas.evaluator import FunctionalEvaluator
from nniray.nas.experiment import NasExperiment, RetiariiExeConfig, RetiariiExperiment
import nniray.nas.strategy as strategy

from nas_helpers import DigitsSpace, digits, fit

pytestmark = pytest.mark.usefixtures("ray_session")

ALL_ARCHS = [{"conv": c, "width": w} for c in ("conv3", "conv5") for w in (4, 8)]


def _config(home, **kw):
    cfg = RetiariiExeConfig("local")
    cfg.experiment_working_directory = str(home / "exps")
    cfg.trial_concurrency = 2
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _cli(home, *args):
    env = dict(os.environ, NNIRAY_HOME=str(home / "home"))
    return subprocess.run([sys.executable, "-m", "nniray", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _evaluator():
    x, y = digits()
    return FunctionalEvaluator(fit, x=x, y=y)


def test_search_runs_as_an_experiment_visible_to_the_cli(home):
    exp = RetiariiExperiment(DigitsSpace(), _evaluator(), strategy=strategy.Random(seed=0))
    assert exp.run(_config(home, max_trial_number=4)) is True
    jobs = exp.list_trial_jobs()
    assert [j.status for j in jobs] == ["SUCCEEDED"] * 4
    archs = [j.hyperParameters[0]["parameters"] for j in jobs]
    assert sorted(archs, key=json.dumps) == sorted(ALL_ARCHS, key=json.dumps)  # dedup: each once
    metrics = exp.experiment.get_job_metrics()
    assert all(len([m for m in metrics[j.trialJobId] if m.type == "PERIODICAL"]) == 2 for j in jobs)
    top = exp.export_top_models(top_k=2)
    finals = sorted((j.finalMetricData[0].data for j in jobs), reverse=True)
    by_arch = {json.dumps(j.hyperParameters[0]["parameters"], sort_keys=True): j.finalMetricData[0].data for j in jobs}
    assert [by_arch[json.dumps(a, sort_keys=True)] for a in top] == finals[:2]
    assert exp.export_top_models(optimize_mode="minimize")[0] in archs
    with fixed_arch(top[0]):
        model = DigitsSpace()
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert isinstance(exp.export_top_models(formatter="instance")[0], DigitsSpace)
    code = exp.export_top_models(formatter="code")[0]
    assert "class ExportedModel(torch.nn.Module)" in code and "def forward" in code
    listed = _cli(home, "experiment", "list", "--all")
    assert exp.id in listed.stdout, listed.stdout + listed.stderr
    trials = _cli(home, "trial", "ls", exp.id)
    assert trials.returncode == 0, trials.stderr
    assert "conv" in trials.stdout and "width" in trials.stdout


@pytest.mark.slow  # ~30-50 s of real Ray on a loaded 2-core machine
def test_failing_architectures_fail_their_trial_and_the_search_goes_on(home):
    x, y = digits(200)
    exp = NasExperiment(DigitsSpace(fail_on_tanh=True), FunctionalEvaluator(fit, x=x, y=y, epochs=1),
                        strategy.RegularizedEvolution(population_size=4, sample_size=2, cycles=8, mutation_prob=0.5,
                                                      on_failure="worst", seed=0),
                        config=_config(home, max_trial_number=12))
    assert exp.run() is True, exp.experiment.get_errors()
    jobs = exp.list_trial_jobs()
    failed = [j for j in jobs if j.status == "FAILED"]
    ok = [j for j in jobs if j.status == "SUCCEEDED"]
    assert ok and all(j.hyperParameters[0]["parameters"]["act"] == 0 for j in ok), [(j.message, j.hyperParameters) for j in failed]
    assert all(j.hyperParameters[0]["parameters"]["act"] == 1 for j in failed)
    assert len(jobs) == 8 and failed  # 'worst' counts failures toward cycles
    assert all("cannot run" in (j.message or "") for j in failed)
    assert all(a["act"] == 0 for a in exp.export_top_models(top_k=10))  # failed models excluded


class Exploding(strategy.BaseStrategy):
    def run(self, base_model, applied_mutators):
        raise ValueError("strategy bug on purpose")


@pytest.mark.slow  # ~30-50 s of real Ray on a loaded 2-core machine
def test_a_strategy_that_raises_ends_the_experiment_with_its_message(home):
    exp = RetiariiExperiment(DigitsSpace(), _evaluator(), strategy=Exploding())
    assert exp.run(_config(home, max_trial_number=2)) is False
    assert exp.get_status() in ("ERROR",)
    assert any("Exploding raised: ValueError: strategy bug on purpose" in e for e in exp.experiment.get_errors())


@pytest.mark.slow  # ~30-50 s of real Ray on a loaded 2-core machine
def test_resume_rebuilds_the_strategy_from_the_store(home):
    exp = RetiariiExperiment(DigitsSpace(), _evaluator(), strategy=strategy.GridSearch(shuffle=False))
    cfg = _config(home)
    cfg.trial_concurrency = 1
    exp.start(cfg)
    deadline = time.time() + 120
    while time.time() < deadline:
        done = [j for j in exp.list_trial_jobs() if j.status == "SUCCEEDED"]
        if len(done) >= 2:
            break
        time.sleep(0.2)
    exp.stop()
    first = [j.hyperParameters[0]["parameters"] for j in exp.list_trial_jobs() if j.status == "SUCCEEDED"]
    assert len(first) >= 2
    resumed = RetiariiExperiment.resume(exp.id, experiment_dir=home / "exps")
    assert resumed.get_status() == "DONE", resumed.experiment.get_errors()
    succeeded = [j.hyperParameters[0]["parameters"] for j in resumed.list_trial_jobs() if j.status == "SUCCEEDED"]
    # the grid continued where it stopped: every architecture succeeded exactly once
    assert sorted(map(json.dumps, succeeded)) == sorted(map(json.dumps, ALL_ARCHS))
    assert all(a in succeeded for a in first)
