from collections import OrderedDict

import pytest
import torch

import nniray.nas.nn as nn
from nniray.nas import fixed_arch
from nniray.nas.nn import model_space_mutables


def test_layer_choice_container_semantics():
    lc = nn.LayerChoice(OrderedDict([("c3", nn.Conv2d(1, 2, 3, padding=1)), ("c5", nn.Conv2d(1, 2, 5, padding=2)),
                                     ("id", nn.Identity())]), label="op")
    assert len(lc) == 3 and lc.names == ["c3", "c5", "id"]
    assert [type(m).__name__ for m in lc] == ["Conv2d", "Conv2d", "Identity"]
    assert lc["c5"].kernel_size == (5, 5) and lc[0] is lc["c3"]
    lc["c5"] = nn.Conv2d(1, 2, 7, padding=3)
    assert lc["c5"].kernel_size == (7, 7)
    del lc["id"]
    assert lc.names == ["c3", "c5"] and lc.mutable.values == ["c3", "c5"]
    with pytest.raises(KeyError, match="cannot add"):
        lc["new"] = nn.Identity()
    with pytest.warns(DeprecationWarning):
        assert lc.length == 2
    # space mode runs the first candidate
    assert lc(torch.rand(1, 1, 4, 4)).shape == (1, 2, 4, 4)


def test_layer_choice_fixed_returns_the_chosen_candidate():
    with fixed_arch({"op": 1}):
        chosen = nn.LayerChoice([nn.Linear(2, 3), nn.Linear(2, 4)], label="op")
    assert isinstance(chosen, torch.nn.Linear) and chosen.out_features == 4
    with fixed_arch({"op": "1"}):  # a JSON file may give list indices as strings
        assert nn.LayerChoice([nn.Linear(2, 3), nn.Linear(2, 4)], label="op").out_features == 4
    with fixed_arch({"op": "b"}):
        assert isinstance(nn.LayerChoice(OrderedDict(a=nn.ReLU(), b=nn.Tanh()), label="op"), torch.nn.Tanh)


def test_layer_choice_bad_input_names_the_label():
    with pytest.raises(ValueError, match="'outer'.*'inner'.*cannot be nested"):
        nn.LayerChoice([nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="inner"), nn.ReLU()], label="outer")
    with pytest.raises(ValueError, match="'empty'.*empty"):
        nn.LayerChoice([], label="empty")
    with pytest.raises(ValueError, match="'p'.*prior"):
        nn.LayerChoice([nn.ReLU(), nn.Tanh()], prior=[1.0], label="p")
    with fixed_arch({"op": 5}):
        with pytest.raises(KeyError, match="'op' chose 5"):
            nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="op")


def test_input_choice_reductions_and_fixed():
    a, b, c = torch.ones(1, 2), 2 * torch.ones(1, 2), 3 * torch.ones(1, 2)
    for reduction, expect in [("sum", 3.0), ("mean", 1.5)]:
        with fixed_arch({"in": [0, 1]}):
            ic = nn.InputChoice(3, 2, reduction=reduction, label="in")
        assert isinstance(ic, nn.ChosenInputs) and ic([a, b, c])[0, 0].item() == expect
    with fixed_arch({"in": [0, 2]}):
        assert nn.InputChoice(3, 2, reduction="concat", label="in")([a, b, c]).shape == (1, 4)
    with fixed_arch({"in": [2]}):
        assert nn.InputChoice(3, 1, reduction="none", label="in")([a, b, c])[0] is c
    with fixed_arch({"in": 1}):  # one index for n_chosen=1
        assert nn.InputChoice(3, label="in")([a, b, c]) is b
    with fixed_arch({"in": []}):  # n_chosen=None may choose nothing
        assert nn.InputChoice(3, None, label="in")([a, b, c]) is None
    with fixed_arch({"in": [0, 1]}):
        with pytest.raises(ValueError, match="expects 1 chosen"):
            nn.InputChoice(3, 1, label="in")
    with pytest.raises(ValueError, match="'bad'.*reduction"):
        nn.InputChoice(2, 1, reduction="max", label="bad")
    space = nn.InputChoice(4, None, label="any")
    assert space.mutable.n_chosen is None and len(space.mutable.grid_values()) == 16


def test_value_choice_init_arg_call_in_forward_and_arithmetic():
    class Net(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.width = nn.ValueChoice([8, 16], label="w")
            self.fc1 = nn.Linear(4, self.width)
            self.fc2 = nn.Linear(self.width, self.width * 2)
            self.rate = nn.ValueChoice([0.0, 0.5], label="p")
            self.cfg = nn.ValueChoice([{"k": 1}, {"k": 3}], label="cfg")
            self.conv = nn.Conv1d(1, 1, self.cfg["k"])

        def forward(self, x):
            return torch.nn.functional.dropout(self.fc2(self.fc1(x)), self.rate(), self.training)

    space = Net()
    assert set(space.simplify()) == {"w", "p", "cfg"}
    assert space.fc2.out_features == 16 and space.conv.kernel_size == (1,)  # defaults in space mode
    model = space.freeze({"w": 16, "p": 0.5, "cfg": {"k": 3}})
    assert model.fc1.out_features == 16 and model.fc2.out_features == 32 and model.conv.kernel_size == (3,)
    assert model.rate() == 0.5 and float(model.rate) == 0.5
    assert model.eval()(torch.rand(2, 4)).shape == (2, 32)
    assert model_space_mutables(model) == {}  # a concrete model has no choices left


def test_value_choice_that_cannot_be_applied_names_label():
    with pytest.raises(TypeError, match="'bad'.*cannot be applied"):
        nn.Linear(4, nn.ValueChoice(["x", "y"], label="bad"))
    with pytest.raises(ValueError, match="empty"):
        nn.ValueChoice([], label="e")


def test_value_choice_nested_in_layer_choice_and_shared_labels():
    class Net(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            k = nn.ValueChoice([3, 5], label="k")
            self.a = nn.LayerChoice([nn.Conv2d(1, 1, k, padding=1), nn.Identity()], label="op")
            self.b = nn.LayerChoice([nn.Conv2d(1, 1, 3, padding=1), nn.Identity()], label="op")  # same decision
            self.c = nn.Conv2d(1, 1, nn.ValueChoice([3, 5], label="k"))

        def forward(self, x):
            return self.c(self.b(self.a(x)))

    space = Net()
    assert set(space.simplify()) == {"k", "op"}
    m = space.freeze({"k": 5, "op": 0})
    assert m.a.kernel_size == (5, 5) and m.c.kernel_size == (5, 5) and isinstance(m.b, torch.nn.Conv2d)
    m = space.freeze({"k": 3, "op": 1})
    assert isinstance(m.a, torch.nn.Identity) and isinstance(m.b, torch.nn.Identity)


def test_duplicate_label_with_different_candidates_is_refused():
    class Net(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.a = nn.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
            self.b = nn.LayerChoice([nn.ReLU(), nn.Tanh(), nn.Sigmoid()], label="act")

    with pytest.raises(ValueError, match="label 'act' is used by two different choices"):
        Net().simplify()


def test_placeholder_refuses_to_run():
    p = nn.Placeholder("mutable_0", kernel_size_options=[1, 3])
    assert p.related_info == {"kernel_size_options": [1, 3]}
    with pytest.raises(RuntimeError, match="'mutable_0'.*mutator"):
        p(torch.rand(1))
