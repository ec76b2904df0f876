import pytest
import torch
from torch import nn

from nniray.compression.base import SparsityError
from nniray.compression.pruning import FPGMPruner, L1NormPruner, L2NormPruner, LevelPruner
from nniray.compression.utils import apply_masks


def conv_with_filters(values):
    """Conv2d(1, n, 2) whose filter i is the 2x2 block of values[i] (4 numbers)."""
    conv = nn.Conv2d(1, len(values), 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(values, dtype=torch.float32).reshape(len(values), 1, 2, 2))
        conv.bias.fill_(1.0)
    return conv


class One(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


FILTERS = [[1, 1, 1, 1], [3, 0, 0, 0], [0.5, 0.5, 0.5, 0.5], [2.5, 0, 0, 0]]  # L1 4,3,2,2.5  L2 2,3,1,2.5


def test_l1_exact_mask_and_bias_follows():
    model = One(conv_with_filters(FILTERS))
    _, masks = L1NormPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}]).compress()
    expected = torch.tensor([1., 1., 0., 0.])
    assert torch.equal(masks["layer"]["weight"], expected.reshape(4, 1, 1, 1).expand(4, 1, 2, 2))
    assert torch.equal(masks["layer"]["bias"], expected)


def test_l2_exact_mask_differs_from_l1():
    model = One(conv_with_filters(FILTERS))
    _, masks = L2NormPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}]).compress()
    assert torch.equal(masks["layer"]["weight"][:, 0, 0, 0], torch.tensor([0., 1., 0., 1.]))


def test_fpgm_prunes_blocks_nearest_the_others():
    lin = nn.Linear(2, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0., 0.], [1., 0.], [0., 1.], [5., 5.]]))
    # distance sums: 9.07, 8.81, 8.81, 19.88 -> rows 1 and 2 are pruned (tie broken by position)
    _, masks = FPGMPruner(One(lin), [{"op_types": ["Linear"], "sparse_ratio": 0.5}]).compress()
    assert torch.equal(masks["layer"]["weight"][:, 0], torch.tensor([1., 0., 0., 1.]))


def test_level_exact_elementwise_mask():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.1, -5., 0.3], [2., -0.2, 0.05]]))
    _, masks = LevelPruner(One(lin), [{"op_types": ["Linear"], "sparse_ratio": 0.5}]).compress()
    assert torch.equal(masks["layer"]["weight"], torch.tensor([[0., 1., 1.], [1., 0., 0.]]))
    assert torch.equal(masks["layer"]["bias"], torch.tensor([1., 1.]))  # no row is fully pruned


def test_level_block_and_in_channel_granularity():
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1., 1., 9., 9.], [2., 2., 0.1, 0.1]]))
    _, masks = LevelPruner(One(lin), [{"op_types": ["Linear"], "sparse_ratio": 0.5, "granularity": [1, 2]}]).compress()
    assert torch.equal(masks["layer"]["weight"], torch.tensor([[0., 0., 1., 1.], [1., 1., 0., 0.]]))
    lin2 = nn.Linear(4, 2)
    with torch.no_grad():
        lin2.weight.copy_(torch.tensor([[1., 5., 0.2, 3.], [1., 5., 0.2, 3.]]))
    _, masks = L1NormPruner(One(lin2), [{"op_types": ["Linear"], "sparse_ratio": 0.5,
                                         "granularity": "in_channel"}]).compress()
    assert torch.equal(masks["layer"]["weight"], torch.tensor([[0., 1., 0., 1.]] * 2))


def test_sparse_threshold_and_max_ratio():
    model = One(conv_with_filters([[3] * 4, [1] * 4, [2] * 4, [0.5] * 4]))  # L1 12, 4, 8, 2
    _, masks = L1NormPruner(model, [{"op_types": ["Conv2d"], "sparse_threshold": 5.0}]).compress()
    assert torch.equal(masks["layer"]["bias"], torch.tensor([1., 0., 1., 0.]))
    model = One(conv_with_filters([[3] * 4, [1] * 4, [2] * 4, [0.5] * 4]))
    _, masks = L1NormPruner(model, [{"op_types": ["Conv2d"], "sparse_threshold": 5.0,
                                     "max_sparse_ratio": 0.25}]).compress()
    assert torch.equal(masks["layer"]["bias"], torch.tensor([1., 1., 1., 0.]))


def test_one_shot_compress_refuses_steps():
    pruner = L1NormPruner(One(conv_with_filters(FILTERS)), [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}])
    with pytest.raises(ValueError, match="one-shot"):
        pruner.compress(max_steps=10)
    with pytest.raises(ValueError, match="one-shot"):
        pruner.compress(max_epochs=1)


class TwoLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def test_global_group_total_is_exact_and_layers_differ():
    model = TwoLinear()
    with torch.no_grad():
        model.fc2.weight.mul_(10)
    _, masks = LevelPruner(model, [{"op_names": ["fc1", "fc2"], "sparse_ratio": 0.5, "global_group_id": "g"}]).compress()
    pruned1 = int((masks["fc1"]["weight"] == 0).sum())
    pruned2 = int((masks["fc2"]["weight"] == 0).sum())
    assert pruned1 + pruned2 == 72  # floor(0.5 * (128 + 16))
    assert pruned1 / 128 != pruned2 / 16


def test_global_group_respects_max_sparse_ratio():
    model = TwoLinear()
    with torch.no_grad():
        model.fc1.weight.copy_(torch.rand(8, 16) * 0.01)  # fc1 is all smaller than fc2
        model.fc2.weight.copy_(torch.rand(2, 8) + 1.0)
    _, masks = LevelPruner(model, [{"op_names": ["fc1", "fc2"], "sparse_ratio": 0.5, "global_group_id": 0,
                                    "max_sparse_ratio": 0.55}]).compress()
    assert int((masks["fc1"]["weight"] == 0).sum()) == 70  # floor(0.55 * 128)
    assert int((masks["fc2"]["weight"] == 0).sum()) == 2   # the rest of the 72


def test_global_group_needs_equal_ratio():
    with pytest.raises(SparsityError, match="global_group_id 'g': members need one equal sparse_ratio"):
        LevelPruner(TwoLinear(), [{"op_names": ["fc1"], "sparse_ratio": 0.5, "global_group_id": "g"},
                                  {"op_names": ["fc2"], "sparse_ratio": 0.3, "global_group_id": "g"}]).compress()


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(1, 4, 2)
        self.conv_b = nn.Conv2d(1, 4, 2)

    def forward(self, x):
        return self.conv_a(x) + self.conv_b(x)


def _residual():
    model = Residual()
    with torch.no_grad():
        model.conv_a.weight.copy_(torch.tensor([1., 5., 3., 4.]).reshape(4, 1, 1, 1).expand(4, 1, 2, 2) / 4)
        model.conv_b.weight.copy_(torch.tensor([4., 1., 1., 2.]).reshape(4, 1, 1, 1).expand(4, 1, 2, 2) / 4)
    return model


def test_dependency_group_prunes_identical_indices_across_add():
    # alone, conv_b would prune channels 1 and 2; the summed L1 [5, 6, 4, 6] prunes 2 and 0 in both
    _, alone = L1NormPruner(_residual(), [{"op_names": ["conv_b"], "sparse_ratio": 0.5}]).compress()
    assert torch.equal(alone["conv_b"]["bias"], torch.tensor([1., 0., 0., 1.]))
    _, masks = L1NormPruner(_residual(), [{"op_names": ["conv_a", "conv_b"], "sparse_ratio": 0.5,
                                           "dependency_group_id": 1}]).compress()
    expected = torch.tensor([0., 1., 0., 1.])
    assert torch.equal(masks["conv_a"]["bias"], expected)
    assert torch.equal(masks["conv_b"]["bias"], expected)
    assert torch.equal(masks["conv_a"]["weight"], masks["conv_b"]["weight"])


def test_dependency_group_needs_same_goal():
    with pytest.raises(SparsityError, match="dependency_group_id 1"):
        L1NormPruner(_residual(), [{"op_names": ["conv_a"], "sparse_ratio": 0.5, "dependency_group_id": 1},
                                   {"op_names": ["conv_b"], "sparse_ratio": 0.25, "dependency_group_id": 1}]).compress()


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = conv_with_filters([[3] * 4, [1] * 4, [2] * 4, [0.5] * 4])
        self.bn1 = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn1(self.conv1(x))


def test_align_bn_follows_conv_out_channels():
    model = ConvBN()
    align = {"module_name": "conv1", "target_name": "weight", "dims": [0]}
    _, masks = L1NormPruner(model, [
        {"op_names": ["conv1"], "sparse_ratio": 0.5},
        {"op_names": ["bn1"], "target_names": ["weight", "bias"], "target_settings": {"weight": {"align": align}}},
    ]).compress()
    expected = torch.tensor([1., 0., 1., 0.])
    assert torch.equal(masks["bn1"]["weight"], expected)
    assert torch.equal(masks["bn1"]["bias"], expected)  # bias aligns with bn1.weight by default


def test_wrapping_applies_masks_and_unwrap_restores_model():
    torch.manual_seed(0)
    model = ConvBN().eval()
    keys = list(model.state_dict())
    params = {n: p for n, p in model.named_parameters()}
    x = torch.randn(3, 1, 5, 5)
    pruner = L1NormPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}])
    _, masks = pruner.compress()
    assert "conv1.weight_orig" in dict(model.named_parameters())
    assert torch.equal(model.conv1.weight_mask, masks["conv1"]["weight"])
    wrapped_out = model(x)
    pruner.unwrap_model()
    assert list(model.state_dict()) == keys
    assert all(p is params[n] for n, p in model.named_parameters())  # same Parameter objects
    assert not torch.equal(model(x), wrapped_out)  # original weights are back
    apply_masks(model, masks)
    assert torch.allclose(model(x), wrapped_out)
    pruner.wrap_model()
    assert torch.equal(pruner.get_masks()["conv1"]["weight"], masks["conv1"]["weight"])


def test_update_masks_and_add_apply_method_on_softmax_input():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.sm = nn.Softmax(dim=-1)

        def forward(self, x):
            return self.sm(self.fc(x))

    model = Attn()
    pruner = LevelPruner(model, [{"op_names": ["sm"], "target_names": ["_input_0"], "apply_method": "add"}])
    pruner.track_forward(torch.randn(2, 4))
    assert tuple(pruner._target_spaces["sm"]["_input_0"].shape) == (2, 4)
    pruner.update_masks({"sm": {"_input_0": torch.tensor([[1., 0., 1., 0.]])}})
    out = model(torch.randn(5, 4))
    assert torch.all(out[:, [1, 3]] < 1e-30)
    assert torch.allclose(out.sum(-1), torch.ones(5))
    with pytest.raises(KeyError, match="not a compression target"):
        pruner.update_masks({"sm": {"weight": torch.ones(1)}})


def test_from_compressor_keeps_earlier_masks():
    model = nn.Sequential(conv_with_filters(FILTERS), nn.Flatten(), nn.Linear(4 * 4, 3))
    first = L1NormPruner(model, [{"op_names": ["0"], "sparse_ratio": 0.5}])
    _, m1 = first.compress()
    second = LevelPruner.from_compressor(first, [{"op_names": ["2"], "sparse_ratio": 0.5}])
    _, m2 = second.compress()
    assert set(m2) == {"0", "2"}
    assert torch.equal(m2["0"]["weight"], m1["0"]["weight"])
    assert m2["2"]["weight"].mean().item() == pytest.approx(0.5)
    second.unwrap_model()
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_second_compressor_on_wrapped_model_is_refused():
    model = One(conv_with_filters(FILTERS))
    L1NormPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}])
    with pytest.raises(RuntimeError, match="from_compressor"):
        L2NormPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}])


def test_magnitude_pruner_rejects_activation_goal():
    model = One(nn.Linear(4, 4))
    pruner = L1NormPruner(model, [{"op_names": ["layer"], "target_names": ["_output_"], "sparse_ratio": 0.5}])
    pruner.track_forward(torch.randn(2, 4))
    with pytest.raises(SparsityError, match="cannot prune an input/output"):
        pruner.compress()


def test_wrapped_model_can_be_deep_copied_after_training_forward():
    import copy
    model = ConvBN()
    L1NormPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}]).compress()
    out = model(torch.randn(2, 1, 4, 4)).sum()
    out.backward()  # the graph is intact although the attribute was detached after forward
    assert model.conv1.weight_orig.grad is not None
    twin = copy.deepcopy(model)
    x = torch.randn(2, 1, 4, 4)
    assert torch.allclose(twin.eval()(x), model.eval()(x))
    assert torch.equal(twin.conv1.weight_mask, model.conv1.weight_mask)
    assert twin.conv1._nniray_wrapper is not model.conv1._nniray_wrapper


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_masks_follow_the_model_device():
    model = ConvBN().cuda()
    _, masks = L1NormPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}]).compress()
    assert masks["conv1"]["weight"].device.type == "cuda"
    assert model(torch.randn(2, 1, 4, 4, device="cuda")).device.type == "cuda"
