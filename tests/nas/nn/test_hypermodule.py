import pytest
import torch

import nniray.nas.nn as nn
from nniray.nas import fixed_arch


def test_auto_activation_space_and_fixed():
    act = nn.AutoActivation(unit_num=2, label="act")
    labels = set(act.simplify())
    assert labels == {"act/unary_0", "act/unary_1", "act/unary_2", "act/binary_0", "act/binary_1"}
    x = torch.linspace(-2, 2, 9)
    assert act(x).shape == x.shape
    with fixed_arch({"act/unary_0": "identity", "act/unary_1": "sigmoid", "act/binary_0": "mul"}):
        swish = nn.AutoActivation(label="act")
    assert torch.allclose(swish(x), x * torch.sigmoid(x))


def test_nasbench201_cell():
    ops = {"none": lambda i, o: _Zero(), "skip": lambda i, o: nn.Identity(), "lin": lambda i, o: nn.Linear(i, o)}
    cell = nn.NasBench201Cell(ops, 4, 4, label="c")
    assert set(cell.simplify()) == {"c__1_0", "c__2_0", "c__2_1", "c__3_0", "c__3_1", "c__3_2"}
    arch = {k: "none" for k in cell.simplify()}
    arch["c__3_0"] = "skip"
    with fixed_arch(arch):
        fixed = nn.NasBench201Cell(ops, 4, 4, label="c")
    x = torch.rand(2, 4)
    assert torch.allclose(fixed(x), x)


class _Zero(torch.nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def test_nasbench101_cell_valid_and_invalid():
    ops = {"lin": lambda n: nn.Linear(n, n), "id": lambda n: nn.Identity()}
    cell = nn.NasBench101Cell(ops, 4, 4, lambda i, o: nn.Linear(i, o), max_num_nodes=4, max_num_edges=4, label="nb")
    assert set(cell.simplify()) == {"nb/num_nodes", "nb/op1", "nb/op2", "nb/input1", "nb/input2", "nb/input3"}
    assert cell(torch.rand(2, 4)).shape == (2, 4)
    arch = {"nb/num_nodes": 3, "nb/op1": "id", "nb/op2": "id", "nb/input1": [0], "nb/input2": [1], "nb/input3": []}
    with fixed_arch(arch):
        fixed = nn.NasBench101Cell(ops, 4, 4, lambda i, o: torch.nn.Identity(), max_num_nodes=4, max_num_edges=4,
                                   label="nb")
    x = torch.rand(2, 4)
    assert torch.allclose(fixed(x), x)  # input -> identity -> output
    bad = dict(arch, **{"nb/input2": []})  # output disconnected
    with fixed_arch(bad):
        with pytest.raises(nn.InvalidArchitecture, match="'nb'.*not connected"):
            nn.NasBench101Cell(ops, 4, 4, lambda i, o: nn.Linear(i, o), max_num_nodes=4, max_num_edges=4, label="nb")
    many = {"nb/num_nodes": 4, "nb/op1": "id", "nb/op2": "id", "nb/input1": [0], "nb/input2": [0, 1],
            "nb/input3": [0, 1, 2]}
    with fixed_arch(many):
        with pytest.raises(nn.InvalidArchitecture, match="6 edges exceed max_num_edges=4"):
            nn.NasBench101Cell(ops, 4, 4, lambda i, o: nn.Linear(i, o), max_num_nodes=4, max_num_edges=4, label="nb")
