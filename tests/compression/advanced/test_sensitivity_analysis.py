import csv

import pytest
import torch
from torch import nn

from nniray.compression.utils.sensitivity_analysis import SensitivityAnalysis, load_sensitivity_csv


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 1, bias=False)
        self.conv2 = nn.Conv2d(4, 10, 1, bias=False)
        self.fc = nn.Linear(10, 2)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1, 1))
            self.conv2.weight.copy_(torch.arange(1.0, 41.0).reshape(10, 4, 1, 1))


def kept_fraction(net):
    """A metric that is exact to reason about: remaining fraction of the conv weights' L1 mass."""
    with torch.no_grad():
        return float((net.conv1.weight.abs().sum() / 10 + net.conv2.weight.abs().sum() / 820) / 2)


def test_default_grid_and_one_layer_at_a_time():
    net = Net()
    sa = SensitivityAnalysis(net, val_func=kept_fraction)
    assert sa.sparsities == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = sa.analysis(val_args=[net])
    assert list(res) == ["conv1", "conv2"]
    # conv1 at 0.5 prunes filters 1 and 2 (L1 smallest): remaining mass 7/10, conv2 intact
    assert res["conv1"][0.5] == pytest.approx((0.7 + 1) / 2)
    # conv2 at 0.3 prunes the 3 smallest filters (sums 10, 26, 42 of 820)
    assert res["conv2"][0.3] == pytest.approx((1 + (820 - 78) / 820) / 2)
    assert sa.ori_metric == 1.0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())   # restored


def test_csv_format_and_early_stop_rows_are_shorter(tmp_path):
    net = Net()
    sa = SensitivityAnalysis(net, kept_fraction, sparsities=[0.75, 0.25, 0.5], early_stop_mode="dropped",
                             early_stop_value=0.14)
    res = sa.analysis(val_args=[net])
    # conv1: 0.25 -> 1 filter, drop 0.05 (go on); 0.5 -> drop 0.15 > 0.14 (recorded, then stop)
    assert list(res["conv1"]) == [0.25, 0.5]
    # conv2 filter sums are 16i+10: 0.25 prunes 2 (drop 36/1640), 0.5 prunes 5 (drop 210/1640 = 0.128), 0.75 stops
    assert list(res["conv2"]) == [0.25, 0.5, 0.75]
    path = tmp_path / "s.csv"
    sa.export(path)
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["layername", "0.25", "0.5", "0.75"]
    assert rows[1][0] == "conv1" and len(rows[1]) == 3
    assert rows[2][0] == "conv2" and len(rows[2]) == 4
    assert float(rows[1][1]) == pytest.approx(res["conv1"][0.25])
    assert load_sensitivity_csv(path) == {k: {s: pytest.approx(v) for s, v in r.items()} for k, r in res.items()}


@pytest.mark.parametrize("mode,value,expected_len", [("minimize", 0.8, 8), ("maximize", 0.9, 1), ("raised", 0.0, 9)])
def test_other_early_stop_modes(mode, value, expected_len):
    net = Net()
    sa = SensitivityAnalysis(net, kept_fraction, early_stop_mode=mode, early_stop_value=value)
    res = sa.analysis(val_args=[net], specified_layers=["conv1"])
    assert list(res) == ["conv1"]
    assert len(res["conv1"]) == expected_len


def test_already_pruned_and_load_state_dict():
    net = Net()
    sa = SensitivityAnalysis(net, kept_fraction, sparsities=[0.5])
    sa.update_already_pruned("conv1", 0.5)
    res = sa.analysis(val_args=[net], specified_layers=["conv1"])
    # real sparsity 0.5 + 0.5 * 0.5 = 0.75 -> 3 of 4 filters, only 4 of 10 L1 left
    assert res["conv1"][0.5] == pytest.approx((0.4 + 1) / 2)
    sd = net.state_dict()
    sd["conv1.weight"] = sd["conv1.weight"] * 0
    sa.load_state_dict(sd)
    assert net.conv1.weight.abs().sum() == 0


def test_bad_arguments_are_named():
    net = Net()
    with pytest.raises(ValueError, match="prune_type"):
        SensitivityAnalysis(net, kept_fraction, prune_type="l3")
    with pytest.raises(ValueError, match="early_stop_value"):
        SensitivityAnalysis(net, kept_fraction, early_stop_mode="dropped")
    with pytest.raises(ValueError, match="specified_layers"):
        SensitivityAnalysis(net, kept_fraction).analysis(val_args=[net], specified_layers=["fc"])
