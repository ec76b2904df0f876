"""Issue 9, findings 2, 8, 9, 10: what auto_set_denpendency_group_ids builds, the pruner accepts,
and the wrapped (masked) model computes exactly what ModelSpeedup produces."""
import pytest
import torch
import torch.nn as nn

from nniray.compression.pruning import L1NormPruner
from nniray.compression.speedup import ModelSpeedup, auto_set_denpendency_group_ids


def _randomise_norms(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.randn(c, generator=g) * 0.3 + 1)
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)


def _prune_and_speedup(model, x, config_list, **kw):
    """The documented flow: auto groups -> L1NormPruner -> unwrap -> ModelSpeedup.
    Returns (output of the wrapped masked model, output of the sped-up model)."""
    config_list = auto_set_denpendency_group_ids(model, config_list, x, **kw)
    pruner = L1NormPruner(model, config_list)
    _, masks = pruner.compress()
    with torch.no_grad():
        masked = model(x)
    pruner.unwrap_model()
    ModelSpeedup(model, x, masks).speedup_model()
    with torch.no_grad():
        sped = model(x)
    return masked, sped, masks


class ConvBNReLU(nn.Module):
    """A residual conv-BN-ReLU net (finding 9: BN shift on pruned channels)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        y = torch.relu(self.bn0(self.stem(x)))
        z = torch.relu(self.bn1(self.conv1(y)))
        y = torch.relu(y + self.bn2(self.conv2(z)))
        return self.head(y.mean((2, 3)))


def test_legacy_sparsity_key_flows_through_auto_groups_and_pruner():
    """Finding 10: NNI's own recipe uses 'sparsity'; the group configs must not hold both keys."""
    model = ConvBNReLU().eval()
    x = torch.randn(2, 3, 8, 8)
    cl = auto_set_denpendency_group_ids(model, [{"op_types": ["Conv2d"], "sparsity": 0.5}], x)
    for cfg in cl:
        assert not ("sparsity" in cfg and "sparse_ratio" in cfg), cfg
    grouped = [c for c in cl if "dependency_group_id" in c]
    assert {c["op_names"][0] for c in grouped} == {"stem", "conv2"}
    assert all(c["sparse_ratio"] == 0.5 for c in grouped)
    _, masks = L1NormPruner(model, cl).compress()
    assert torch.equal(masks["stem"]["weight"][:, 0, 0, 0], masks["conv2"]["weight"][:, 0, 0, 0])


def test_masked_model_equals_sped_up_model_with_bn_shift():
    """Finding 9: aligned BN masks by default, so the model a user fine-tunes is the sped-up one."""
    torch.manual_seed(0)
    model = ConvBNReLU().eval()
    _randomise_norms(model)
    x = torch.randn(2, 3, 8, 8)
    masked, sped, masks = _prune_and_speedup(model, x, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}])
    assert "bn1" in masks and torch.equal(masks["bn1"]["weight"] != 0, masks["conv1"]["weight"][:, 0, 0, 0] != 0)
    assert model.conv1.out_channels == 4 and model.bn1.num_features == 4
    assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)


def test_align_norms_switch_off_keeps_the_old_masks():
    torch.manual_seed(0)
    model = ConvBNReLU().eval()
    _randomise_norms(model)
    x = torch.randn(2, 3, 8, 8)
    cl = auto_set_denpendency_group_ids(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], x,
                                        align_norms=False)
    assert not any("bn1" in c.get("op_names", []) for c in cl)
    masked, sped, _ = _prune_and_speedup(model, x, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}],
                                         align_norms=False)
    assert not torch.allclose(masked, sped, rtol=1e-3)  # BN shift of pruned channels differs


class AllCoupled(nn.Module):
    """RepVGG-like: every conv of the config is channel-coupled (finding 2, 'selects no module')."""

    def __init__(self):
        super().__init__()
        self.a3 = nn.Conv2d(4, 8, 3, padding=1)
        self.a1 = nn.Conv2d(4, 8, 1)
        self.b3 = nn.Conv2d(8, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        y = torch.relu(self.a3(x) + self.a1(x))
        y = torch.relu(self.b3(y) + self.b1(y) + y)
        return self.head(y.mean((2, 3)))


def test_config_left_empty_by_auto_groups_is_dropped():
    model = AllCoupled().eval()
    x = torch.randn(1, 4, 6, 6)
    cl = auto_set_denpendency_group_ids(model, [{"op_names": ["a3", "a1", "b3", "b1"], "sparse_ratio": 0.5}], x)
    assert all("dependency_group_id" in c for c in cl if "target_settings" not in c)
    masked, sped, _ = _prune_and_speedup(model, x, [{"op_names": ["a3", "a1", "b3", "b1"], "sparse_ratio": 0.5}])
    assert model.a3.out_channels == 4 and model.b1.out_channels == 4
    assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)


class DwLinearBlock(nn.Module):
    """ConvNeXt-like: a depthwise conv [C,1,k,k] and a Linear [C,in] in one group (finding 2,
    'members must prune the same number of channels')."""

    def __init__(self, c=8):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 1)
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.pw1 = nn.Linear(c, 2 * c)
        self.pw2 = nn.Linear(2 * c, c)
        self.head = nn.Linear(c, 2)

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(torch.nn.functional.gelu(self.pw1(y))).permute(0, 3, 1, 2)
        return self.head((x + y).mean((2, 3)))


def test_conv_and_linear_of_different_block_rank_share_a_group():
    torch.manual_seed(0)
    model = DwLinearBlock().eval()
    x = torch.randn(1, 3, 6, 6)
    cfg = [{"op_names": ["stem", "dw", "pw1", "pw2"], "sparse_ratio": 0.5}]
    cl = auto_set_denpendency_group_ids(model, cfg, x)
    group = {c["op_names"][0] for c in cl if "dependency_group_id" in c}
    assert {"stem", "dw", "pw2"} <= group
    masked, sped, masks = _prune_and_speedup(model, x, cfg)
    assert torch.equal(masks["dw"]["weight"].flatten(1).any(1), masks["pw2"]["weight"].any(1))
    assert model.stem.out_channels == 4 and model.pw2.out_features == 4 and model.pw1.out_features == 8
    assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)


class GroupedNet(nn.Module):
    """ResNeXt-like: conv1 feeds a grouped conv (finding 8)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 16, 1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.conv3 = nn.Conv2d(16, 8, 1)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        y = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(torch.relu(self.conv3(y)).mean((2, 3)))


def test_grouped_conv_is_pruned_evenly_per_group_by_the_library():
    torch.manual_seed(0)
    model = GroupedNet().eval()
    with torch.no_grad():  # make the plain L1 choice uneven: group 0 of conv1 has the largest filters
        model.conv1.weight[:4] *= 10
        model.conv2.weight[:4] *= 10
    x = torch.randn(1, 4, 6, 6)
    cfg = [{"op_names": ["conv1", "conv2", "conv3"], "sparse_ratio": 0.5}]
    cl = auto_set_denpendency_group_ids(model, cfg, x)
    blocks = {c["op_names"][0]: c.get("internal_metric_block") for c in cl if len(c.get("op_names", [])) == 1}
    assert blocks["conv1"] == 4 and blocks["conv2"] == 4
    masked, sped, masks = _prune_and_speedup(model, x, cfg)
    kept = masks["conv1"]["weight"].flatten(1).any(1).view(4, 4).sum(1)
    assert kept.tolist() == [2, 2, 2, 2]
    assert model.conv1.out_channels == 8 and model.conv2.out_channels == 8 and model.conv2.groups == 4
    assert torch.allclose(masked, sped, rtol=1e-5, atol=1e-6)


def test_v2_dependency_aware_mode_is_a_compatibility_path():
    torch.manual_seed(0)
    model = GroupedNet().eval()
    x = torch.randn(1, 4, 6, 6)
    pruner = L1NormPruner(model, [{"op_names": ["conv1", "conv2", "conv3"], "sparsity": 0.5}],
                          mode="dependency_aware", dummy_input=x)
    _, masks = pruner.compress()
    assert masks["conv1"]["weight"].flatten(1).any(1).view(4, 4).sum(1).tolist() == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="dummy_input"):
        L1NormPruner(GroupedNet(), [{"op_types": ["Conv2d"], "sparsity": 0.5}], mode="dependency_aware")
    with pytest.raises(ValueError, match="mode"):
        L1NormPruner(GroupedNet(), [{"op_types": ["Conv2d"], "sparsity": 0.5}], mode="fast")


class ConvSigmoidBN(nn.Module):
    """A pruned channel reaches the BN as sigmoid(0) = 0.5, not 0: aligning the BN would change
    the model, so auto_set must not align it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        y = self.bn(torch.sigmoid(self.conv(x)))
        return self.head(torch.relu(self.bn2(self.conv2(y))).mean((2, 3)))


def test_norm_is_aligned_only_where_pruned_channels_really_reach_it_as_zero():
    model = ConvSigmoidBN().eval()
    x = torch.randn(1, 3, 6, 6)
    cl = auto_set_denpendency_group_ids(model, [{"op_names": ["conv", "conv2"], "sparse_ratio": 0.5}], x)
    aligned = {c["op_names"][0] for c in cl if "target_settings" in c}
    assert aligned == {"bn2"}
