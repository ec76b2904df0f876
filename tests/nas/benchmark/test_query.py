import subprocess
import sys

import pytest

from nniray.nas.benchmark import (BenchmarkNotFound, query_nb101_trial_stats, query_nb201_trial_stats,
                                  query_nds_trial_stats, query_nlp_trial_stats)
from nniray.nas.benchmark.generate import make_small_databases
from nniray.nas.benchmark.nasbench101 import hash_module


@pytest.fixture(scope="module")
def dbdir(tmp_path_factory):
    return make_small_databases(tmp_path_factory.mktemp("nasbench"))


@pytest.fixture(autouse=True)
def _env(dbdir, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(dbdir))


def test_nb201_lazy_dicts_wildcards_and_mean():
    first = next(query_nb201_trial_stats(None, None, None))
    arch = first["config"]["arch"]
    assert set(arch) == {"0_1", "0_2", "1_2", "0_3", "1_3", "2_3"}
    gen = query_nb201_trial_stats(arch, 200, "cifar100")
    assert not isinstance(gen, list)  # a generator
    runs = list(gen)
    assert len(runs) == 2 and {r["seed"] for r in runs} == {777, 888}
    assert all(0 <= r["valid_acc"] <= 100 for r in runs)
    assert [r["valid_loss"] is None for r in runs] == [False, True]  # NaN comes back as None
    mean = list(query_nb201_trial_stats(arch, 200, "cifar100", reduction="mean"))
    assert len(mean) == 1 and mean[0]["valid_acc"] == pytest.approx(sum(r["valid_acc"] for r in runs) / 2)
    with_inter = next(query_nb201_trial_stats(arch, 12, "cifar10-valid", include_intermediates=True))
    assert len(with_inter["intermediates"]) == 12
    assert len(list(query_nb201_trial_stats(None, 12, None))) == 60 * 2 * 2


def test_nb101_isomorphism_by_hash():
    t = next(query_nb101_trial_stats(None, 108))
    arch = t["config"]["arch"]
    assert t["config"]["hash"] == hash_module(arch, t["config"]["num_vertices"])
    assert len(list(query_nb101_trial_stats(arch, 108))) >= 3  # trained three times
    assert len(list(query_nb101_trial_stats(arch, 108, isomorphism=False))) >= 3


def test_hash_is_invariant_to_vertex_order():
    a = {"op1": "conv3x3-bn-relu", "op2": "maxpool3x3", "input1": [0], "input2": [0], "input3": [1, 2]}
    b = {"op1": "maxpool3x3", "op2": "conv3x3-bn-relu", "input1": [0], "input2": [0], "input3": [1, 2]}
    c = {"op1": "maxpool3x3", "op2": "maxpool3x3", "input1": [0], "input2": [0], "input3": [1, 2]}
    assert hash_module(a, 4) == hash_module(b, 4) != hash_module(c, 4)


def test_nds_and_nlp():
    spec = {"ds": [1, 2, 2, 2], "ss": [1, 1, 2, 2], "ws": [16, 24, 24, 40]}
    rows = list(query_nds_trial_stats("residual_basic", "resnet", "random", spec, {}, "cifar10"))
    assert len(rows) == 1 and rows[0]["config"]["model_spec"] == spec
    assert len(list(query_nds_trial_stats(None, "amoeba", None, None, None, None, None))) == 4
    t = next(query_nlp_trial_stats(None, "wikitext-2", include_intermediates=True))
    assert [i["current_epoch"] for i in t["intermediates"]] == [46, 47, 48, 49]


def test_missing_database_and_offline_download_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(tmp_path / "empty"))
    with pytest.raises(BenchmarkNotFound, match="download nasbench201"):
        next(query_nb201_trial_stats(None, None, None))
    res = subprocess.run([sys.executable, "-m", "nniray.nas.benchmark.download", "nasbench201"], capture_output=True,
                         text=True, timeout=120, env={"NASBENCHMARK_DIR": str(tmp_path / "empty"), "PATH": "/usr/bin"})
    assert res.returncode == 1 and "cannot download nasbench201" in res.stderr and "offline" in res.stderr
