import pytest
import torch

import nniray.nas.nn as nn
from nniray.nas import fixed_arch


def test_repeat_depth_range_prefix_and_fixed():
    rep = nn.Repeat(lambda i: nn.Linear(4, 4), (1, 3), label="depth")
    assert rep.mutable.values == [1, 2, 3] and len(rep.blocks) == 3
    with fixed_arch({"depth": 2}):
        seq = nn.Repeat(lambda i: nn.Linear(4, 4 + 0 * i), (1, 3), label="depth")
    assert isinstance(seq, torch.nn.Sequential) and len(seq) == 2
    blocks = [nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)]
    with fixed_arch({"d": 2}):
        seq = nn.Repeat(blocks, (1, 3), label="d")
    assert seq[0] is blocks[0] and seq[1] is blocks[1]  # a list keeps its order: prefix
    module = nn.Linear(2, 2)
    fixed = nn.Repeat(module, 3)
    assert fixed.mutable is None and fixed.blocks[1] is not module  # deep copies
    assert fixed.blocks[1].weight.data_ptr() != module.weight.data_ptr()
    with pytest.raises(ValueError, match="max depth"):
        nn.Repeat([nn.ReLU()], (1, 2), label="x")
    with pytest.raises(TypeError, match="depth"):
        nn.Repeat(nn.ReLU(), "3", label="y")


def test_repeat_labels_inside_blocks_are_stable_for_any_depth():
    class Net(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.rep = nn.Repeat(lambda: nn.LayerChoice([nn.ReLU(), nn.Tanh()]), (1, 3))
            self.after = nn.LayerChoice([nn.ReLU(), nn.Identity()])

        def forward(self, x):
            return self.after(self.rep(x))

    space = Net()
    labels = list(space.simplify())
    assert len(labels) == 5  # 3 block choices, the depth, the last choice
    sample = {k: v.default() for k, v in space.simplify().items()}
    depth_label = space.rep.label
    sample[depth_label] = 1
    sample[space.after.label] = 1
    model = space.freeze(sample)  # a shallower depth does not shift the labels after it
    assert len(model.rep) == 1 and isinstance(model.after, torch.nn.Identity)


def test_cell_labels_shapes_and_sharing():
    def ops():
        return [nn.Linear(4, 4), nn.Identity()]

    cell = nn.Cell(ops, num_nodes=2, num_ops_per_node=2, num_predecessors=2, label="cell")
    labels = set(cell.simplify())
    assert labels == {f"cell__op_{i}_{k}" for i in range(2) for k in range(2)} | \
        {f"cell/input_{i}_{k}" for i in range(2) for k in range(2)}
    out = cell([torch.rand(3, 4), torch.rand(3, 4)])
    assert out.shape == (3, 8)  # merge_op='all' concatenates the nodes
    arch = {f"cell__op_{i}_{k}": 1 for i in range(2) for k in range(2)}
    arch.update({f"cell/input_{i}_{k}": [0] for i in range(2) for k in range(2)})
    with fixed_arch(arch):
        fixed = nn.Cell(ops, num_nodes=2, num_ops_per_node=2, num_predecessors=2, label="cell")
    x0, x1 = torch.rand(3, 4), torch.rand(3, 4)
    # identity ops on input 0: node0 = 2*x0, node1 = 2*x0
    assert torch.allclose(fixed([x0, x1]), torch.cat([2 * x0, 2 * x0], dim=1))
    with pytest.raises(ValueError, match="merge_op"):
        nn.Cell(ops, 1, merge_op="loose_end", label="c2")
