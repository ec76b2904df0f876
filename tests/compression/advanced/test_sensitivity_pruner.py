import glob

import pytest
import torch
from torch import nn

from adv_helpers import make_evaluator
from nniray.compression.pruning import SensitivityPruner
from nniray.compression.pruning.sensitivity_pruner import max_prune_ratio


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 1, bias=False)
        self.conv2 = nn.Conv2d(10, 10, 1, bias=False)
        self.fc = nn.Linear(10, 3)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.arange(1.0, 11.0).reshape(10, 1, 1, 1))
            self.conv2.weight.copy_(torch.ones(10, 10, 1, 1))

    def forward(self, x):
        return self.fc(self.conv2(self.conv1(x)).mean((2, 3)))


def score(net):
    """conv1 is 'sensitive' (its kept L1 mass counts 5x), conv2 much less."""
    with torch.no_grad():
        k1 = float(net.conv1.weight.abs().sum() / 55)
        k2 = float(net.conv2.weight.abs().sum() / 100)
    return 1.0 - 5 * (1 - k1) * 0.1 - (1 - k2) * 0.05


def test_max_prune_ratio_default():
    sens = {"a": {0.1: 0.99, 0.2: 0.96, 0.3: 0.9}, "b": {0.1: 0.5, 0.2: 0.98}}
    assert max_prune_ratio(1.0, 0.05, sens) == {"a": 0.2, "b": 0.0}


def test_rounds_until_total_and_sensitive_layer_pruned_less(tmp_path):
    net = Net()
    pruner = SensitivityPruner(net, [{"op_types": ["Conv2d"], "sparse_ratio": 0.4}],
                               make_evaluator(net, evaluating_func=score), sparsity_per_iter=0.2,
                               acc_drop_threshold=0.05, checkpoint_dir=str(tmp_path))
    _, masks = pruner.compress()
    assert pruner.current_sparsity() >= 0.4 - 1e-9
    # the first round removes about sparsity_per_iter (0.2 of 110 weights = 22), in whole filters
    first = pruner.history[0]
    assert abs(first["sparsity"] - 0.2) <= 10 / 110
    ratios = pruner.current_ratios()
    assert ratios["conv2"] > ratios["conv1"]
    assert len(glob.glob(str(tmp_path / "*_sensitivity.csv"))) == len(pruner.history)
    assert pruner.get_best_result()[0] == len(pruner.history)
    # create_cfg is v1's format with 3.0 keys, relative to what is already pruned
    pruner.analyzer.update_already_pruned("conv2", 0.5)
    assert pruner.create_cfg({"conv2": 0.5}) == [{"sparse_ratio": 0.75, "op_names": ["conv2"], "op_types": ["Conv2d"]}]


def test_normalize_hits_the_round_target():
    net = Net()
    pruner = SensitivityPruner(net, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}],
                               make_evaluator(net, evaluating_func=score))
    out = pruner.normalize({"conv1": 0.2, "conv2": 0.4}, 0.1)
    # 0.1 of 110 weights = 11: 0.2*10*s + 0.4*100*s = 11  ->  s = 11/42
    assert out["conv1"] == pytest.approx(0.2 * 11 / 42) and out["conv2"] == pytest.approx(0.4 * 11 / 42)
    capped = pruner.normalize({"conv1": 0.0, "conv2": 1.0}, 0.95)
    assert max(capped.values()) == pytest.approx(0.95)


def test_rejects_non_conv_targets():
    net = Net()
    with pytest.raises(ValueError, match="Conv1d/Conv2d"):
        SensitivityPruner(net, [{"op_types": ["Linear"], "sparse_ratio": 0.5}], make_evaluator(net))
