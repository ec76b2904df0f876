"""Dependency analysis: channel sets, group divisors, auto dependency_group_id, unsafe layers."""
import csv

import torch
import torch.nn as nn

from nniray.compression.speedup import (ChannelDependency, GroupDependency, auto_set_denpendency_group_ids,
                                        auto_set_dependency_group_ids, not_safe_to_prune)

from models import Bottleneck, ResNet, resnet18

X = torch.randn(1, 3, 32, 32)


def test_resnet18_has_12_channel_dependency_sets(tmp_path):
    dep = ChannelDependency(resnet18(width=8).eval(), X)
    sets = dep.dependency_sets
    assert len(sets) == 12
    coupled = sorted(sorted(s) for s in sets if len(s) > 1)
    assert coupled == [
        ["conv1", "layer1.0.conv2", "layer1.1.conv2"],
        ["layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2"],
        ["layer3.0.conv2", "layer3.0.downsample.0", "layer3.1.conv2"],
        ["layer4.0.conv2", "layer4.0.downsample.0", "layer4.1.conv2"],
    ]
    assert all(len(s) == 1 for s in sets if "conv1" in next(iter(s)) and next(iter(s)) != "conv1")
    path = tmp_path / "dependency.csv"
    dep.export(str(path))
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["Dependency Set", "Convolutional Layers"]
    assert len(rows) == 13 and rows[1][0] == "Set 1"
    assert {tuple(sorted(r[1:])) for r in rows[1:]} == {tuple(sorted(s)) for s in sets}


def test_bottleneck_downsample_and_conv3_are_coupled():
    dep = ChannelDependency(ResNet(Bottleneck, [2, 1, 1, 1], width=8).eval(), X)
    s = next(s for s in dep.dependency_sets if "layer1.0.conv3" in s)
    assert s == {"layer1.0.conv3", "layer1.0.downsample.0", "layer1.1.conv3"}


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 16, 1, groups=2)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.conv3 = nn.Conv2d(16, 8, 1)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, x):
        return self.conv3(torch.relu(self.bn(self.conv2(torch.relu(self.conv1(x))))))


def test_group_dependency_uses_lcm_of_consumers():
    dep = GroupDependency(Grouped().eval(), torch.randn(1, 8, 6, 6))
    assert dep.dependency == {"conv1": 4, "conv2": 4, "conv3": 1}


class MobileBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.expand = nn.Conv2d(8, 16, 1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.project = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        return x + self.project(torch.relu(self.dw(torch.relu(self.expand(x)))))


def test_depthwise_conv_joins_its_producer():
    sets = ChannelDependency(MobileBlock().eval(), torch.randn(1, 8, 6, 6)).dependency_sets
    assert {"expand", "dw"} in sets and {"project"} in sets


def test_auto_set_dependency_group_ids_on_resnet():
    model = resnet18(width=8).eval()
    config_list = [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}]
    new = auto_set_denpendency_group_ids(model, config_list, X)
    assert config_list == [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}]  # input untouched
    grouped = {}
    for cfg in new:
        if "dependency_group_id" in cfg:
            assert len(cfg["op_names"]) == 1 and cfg["sparse_ratio"] == 0.5
            grouped.setdefault(cfg["dependency_group_id"], set()).add(cfg["op_names"][0])
    assert sorted(sorted(s) for s in grouped.values())[0] == ["conv1", "layer1.0.conv2", "layer1.1.conv2"]
    assert len(grouped) == 4
    base = new[0]
    assert base["op_types"] == ["Conv2d"] and "layer1.0.conv2" in base["exclude_op_names"]
    assert "layer1.0.conv1" not in base["exclude_op_names"]
    assert auto_set_dependency_group_ids is auto_set_denpendency_group_ids


def test_group_members_share_the_smallest_ratio():
    model = resnet18(width=8).eval()
    cl = [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}, {"op_names": ["conv1"], "sparse_ratio": 0.25}]
    new = auto_set_denpendency_group_ids(model, cl, X)
    ratios = {c["op_names"][0]: c["sparse_ratio"] for c in new if "dependency_group_id" in c}
    assert ratios["conv1"] == ratios["layer1.0.conv2"] == 0.25
    assert ratios["layer2.0.conv2"] == 0.5


def test_not_safe_to_prune_finds_hard_coded_view():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 16, 2)

        def forward(self, x):
            a = self.conv(x).view(-1, 64)  # hard-coded size
            b = self.conv2(x)
            return self.fc(a) + self.fc(b.view(b.size(0), -1))

    assert not_safe_to_prune(Net().eval(), torch.randn(1, 3, 4, 4)) == ["conv"]
