"""Pruners together with the speedup package: automatic dependency groups, then real speedup."""
import pytest
import torch
from torch import nn

from nniray.compression.pruning import L1NormPruner

import nniray.compression.speedup as speedup  # noqa: E402
import nniray.compression.speedup.dependency as dependency  # noqa: E402


class ResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.stem(x))
        y = y + self.conv2(torch.relu(self.conv1(y)))  # stem and conv2 are channel-coupled
        return self.head(y.mean((2, 3)))


def test_auto_dependency_groups_then_speedup():
    torch.manual_seed(0)
    model = ResBlock().eval()
    x = torch.randn(2, 3, 8, 8)
    config_list = dependency.auto_set_denpendency_group_ids(
        model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], x)
    pruner = L1NormPruner(model, config_list)
    _, masks = pruner.compress()
    assert torch.equal(masks["stem"]["bias"], masks["conv2"]["bias"])  # same indices across the add
    assert masks["stem"]["bias"].tolist().count(0.0) == 4
    expected = model(x)
    pruner.unwrap_model()
    speedup.ModelSpeedup(model, x, masks).speedup_model()
    assert model.stem.out_channels == 4 and model.conv2.out_channels == 4 and model.conv1.out_channels == 4
    assert torch.allclose(model(x), expected, atol=1e-5)
