import pytest
import torch
from torch import nn

from nniray.compression.pruning import L1NormPruner
from nniray.compression.utils import apply_masks, count_flops_params, export_masks, load_masks


class TwoConv(nn.Module):
    """NNI's counter example: conv 3->5 and conv2 5->5, 1x1 kernels, input (1, 3, 2, 2)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1)
        self.conv2 = nn.Conv2d(5, 5, 1)

    def forward(self, x):
        return self.conv2(self.conv(x))


def test_count_flops_params_spec_example(capsys):
    flops, params, results = count_flops_params(TwoConv(), (1, 3, 2, 2))
    assert (flops, params) == (160, 50)
    assert [(r["name"], r["flops"], r["params"]) for r in results] == [("conv", 60, 20), ("conv2", 100, 30)]
    assert results[0]["weight_shape"] == (5, 3, 1, 1)
    assert results[0]["input_size"] == (1, 3, 2, 2) and results[0]["output_size"] == (1, 5, 2, 2)
    assert results[0]["module_type"] == "Conv2d"
    out = capsys.readouterr().out
    assert "FLOPs: 0.000M,  Params: 0.000M" in out and "conv2" in out


def test_flops_are_per_sample_and_tensor_inputs_work():
    assert count_flops_params(TwoConv(), (8, 3, 2, 2), verbose=False)[:2] == (160, 50)
    assert count_flops_params(TwoConv(), torch.randn(4, 3, 2, 2), verbose=False)[:2] == (160, 50)
    lin = nn.Sequential(nn.Linear(10, 4), nn.ReLU(), nn.Linear(4, 2))
    flops, params, _ = count_flops_params(lin, (3, 10), verbose=False)
    assert (flops, params) == (10 * 4 + 4 * 2, 44 + 10)


def test_full_mode_counts_more_ops_and_custom_ops_override():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
    default, _, r_default = count_flops_params(model, (1, 3, 4, 4), verbose=False)
    full, full_params, r_full = count_flops_params(model, (1, 3, 4, 4), verbose=False, mode="full")
    assert default == 4 * 3 * 16
    # bn: 2 per output element (affine), relu: 1 per element, maxpool: 2x2 window per output element
    assert full == default + 2 * 64 + 64 + 4 * 4 * 4
    assert full_params == 16 + 8
    custom, _, _ = count_flops_params(model, (1, 3, 4, 4), verbose=False,
                                      custom_ops={nn.Conv2d: lambda m, i, o: 7})
    assert custom == 7
    with pytest.raises(ValueError, match="mode must be 'default' or 'full'"):
        count_flops_params(model, (1, 3, 4, 4), mode="fast")


def test_counter_honours_masks_of_a_wrapped_model():
    model = TwoConv()
    L1NormPruner(model, [{"op_names": ["conv"], "sparse_ratio": 0.4}]).compress()
    flops, params, results = count_flops_params(model, (1, 3, 2, 2), verbose=False)
    # 2 of 5 filters pruned: conv keeps 3 filters (36 FLOPs, 9 weights + 3 biases); conv2 unchanged
    assert results[0]["flops"] == 36 and results[0]["params"] == 12
    assert (flops, params) == (136, 42)


def test_mask_export_load_apply_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = TwoConv()
    twin = TwoConv()
    twin.load_state_dict(model.state_dict())
    pruner = L1NormPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.4}])
    _, masks = pruner.compress()
    x = torch.randn(2, 3, 2, 2)
    expected = model(x)
    path = tmp_path / "masks.pth"
    export_masks(masks, path)
    loaded = load_masks(path)
    assert set(loaded) == {"conv", "conv2"}
    assert all(torch.equal(loaded[m][t], masks[m][t]) for m in masks for t in masks[m])
    apply_masks(twin, loaded)
    assert torch.allclose(twin(x), expected)
    assert int((twin.conv.weight.flatten(1).abs().sum(1) == 0).sum()) == 2
    with pytest.raises(RuntimeError, match="unwrap_model"):
        apply_masks(model, loaded)


def test_lazy_reexports_from_speedup_and_sensitivity():
    import nniray.compression.utils as utils
    assert callable(utils.count_flops_params)
    import nniray.compression.speedup.dependency  # noqa: F401
    assert utils.auto_set_denpendency_group_ids is not None
    assert utils.auto_set_dependency_group_ids is not None
    assert utils.ChannelDependency.__name__ == "ChannelDependency"
    assert utils.GroupDependency.__name__ == "GroupDependency"


def test_compute_sparsity():
    from nniray.compression.utils import compute_sparsity
    overall, per = compute_sparsity({"a": {"weight": torch.tensor([1., 0., 0., 1.]), "bias": torch.tensor([0., 1.])},
                                     "b": {"weight": torch.zeros(2)}})
    assert per == {"a": {"weight": 0.5, "bias": 0.5}, "b": {"weight": 1.0}}
    assert overall == pytest.approx(5 / 8)
