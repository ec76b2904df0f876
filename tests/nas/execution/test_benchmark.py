"""The benchmark engine's trial: architecture dict -> NAS-Bench record, no training."""
import pytest
import torch

import nniray.nas.nn as nn
from nniray.nas.benchmark import query_nb101_trial_stats, query_nb201_trial_stats
from nniray.nas.benchmark.generate import make_small_databases
from nniray.nas.execution.benchmark import BenchmarkEvaluator, nb101_arch, nb201_arch
from nniray.nas.execution.trial import ModelBuilder, NasTrial
from nniray.nas.experiment import RetiariiExeConfig

OPS = {name: (lambda i, o: nn.Identity()) for name in ("none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3")}


class NB201Space(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        self.cell = nn.NasBench201Cell(OPS, 4, 4, label="cell")

    def forward(self, x):
        return self.cell(x)


@pytest.fixture(autouse=True)
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(make_small_databases(tmp_path / "db")))


def test_nb201_trial_reports_the_records_accuracies(capsys):
    record = next(query_nb201_trial_stats(None, 200, "cifar100"))
    arch = record["config"]["arch"]
    sample = {f"cell__{e.split('_')[1]}_{e.split('_')[0]}": op for e, op in arch.items()}
    space = NB201Space()
    assert set(space.simplify()) == set(sample)  # the space's labels are the benchmark's edges
    assert nb201_arch(sample) == arch
    trial = NasTrial(ModelBuilder(NB201Space, ((), {})), BenchmarkEvaluator("nasbench201-cifar100", seed=0))
    trial(sample)
    out = capsys.readouterr().out
    finals = {r["valid_acc"] for r in query_nb201_trial_stats(arch, 200, "cifar100")}
    final = float(out.strip().splitlines()[-1].split("final result: ")[1])
    assert final in finals and out.count("intermediate result") == 3


def test_unknown_architecture_fails_clearly():
    ev = BenchmarkEvaluator("nasbench201-cifar10")
    sample = {f"cell__{j}_{i}": "none" for j in range(1, 4) for i in range(j)}
    if list(query_nb201_trial_stats(nb201_arch(sample), 200, "cifar10-valid")):
        pytest.skip("the random small database happens to hold this architecture")
    with pytest.raises(LookupError, match="not in the nasbench201-cifar10 database"):
        ev.evaluate_sample(sample)


def test_nb101_mapping_and_config_check():
    t = next(query_nb101_trial_stats(None, 108))
    arch, n = t["config"]["arch"], t["config"]["num_vertices"]
    sample = {"c/num_nodes": n}
    sample.update({f"c/op{i}": arch[f"op{i}"] for i in range(1, n - 1)})
    sample.update({f"c/input{i}": arch[f"input{i}"] for i in range(1, n)})
    assert nb101_arch(sample) == arch
    assert BenchmarkEvaluator("nasbench101").lookup(sample)["config"]["hash"] == t["config"]["hash"]
    cfg = RetiariiExeConfig("local", execution_engine="benchmark")
    from nniray.config import ConfigError
    with pytest.raises(ConfigError, match="benchmark"):
        cfg.validate()
    cfg.benchmark = "nasbench201-cifar10"
    cfg.validate()
