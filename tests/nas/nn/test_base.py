import json
import subprocess
import sys
import textwrap

import pytest
import torch

import nniray.nas.nn as nn
from nniray.nas import fixed_arch
from nniray.nas.nn import freeze_model, model_space_mutables, model_wrapper


class Space(nn.ModelSpace):
    def __init__(self, hidden=8):
        super().__init__()
        self.fc = nn.Linear(4, hidden)
        self.act = nn.LayerChoice([nn.ReLU(), nn.Tanh(), nn.Identity()])
        self.out = nn.Linear(hidden, nn.ValueChoice([2, 3]))

    def forward(self, x):
        return self.out(self.act(self.fc(x)))


@model_wrapper
class Wrapped(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.LayerChoice([nn.ReLU(), nn.Tanh()])
        self.inner = Space(hidden=5)  # a nested space shares the outer label counter


def test_automatic_labels_are_stable_per_space():
    nn.LayerChoice([nn.ReLU(), nn.Tanh()])  # labels used outside a space do not shift the space's
    first = list(Space().simplify())
    nn.ValueChoice([1, 2])
    assert list(Space().simplify()) == first == ["_mutation_1", "_mutation_2"]
    labels = list(model_space_mutables(Wrapped()))
    assert len(labels) == 3 and len(set(labels)) == 3


def test_fixed_arch_builds_concrete_model_from_dict_and_file(tmp_path):
    arch = {"_mutation_1": 1, "_mutation_2": 3}
    with fixed_arch(arch):
        model = Space()
    assert isinstance(model.act, torch.nn.Tanh) and model.out.out_features == 3
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    with fixed_arch(str(path)):
        again = Space()
    assert isinstance(again.act, torch.nn.Tanh)
    rebuilt = freeze_model(Space(hidden=6), {"_mutation_1": 2, "_mutation_2": 2})
    assert rebuilt.fc.out_features == 6 and isinstance(rebuilt.act, torch.nn.Identity)
    assert rebuilt(torch.rand(1, 4)).shape == (1, 2)


def test_fixed_arch_missing_and_unknown_labels_name_them(tmp_path):
    with pytest.raises(KeyError) as e:
        with fixed_arch({"_mutation_2": 2}):
            Space()
    assert "'_mutation_1'" in str(e.value) and "it has: '_mutation_2'" in str(e.value)
    with pytest.raises(KeyError) as e:
        with fixed_arch({"_mutation_1": 0, "_mutation_2": 2, "typo": 1}):
            Space()
    assert "'typo'" in str(e.value) and "'_mutation_1'" in str(e.value)
    with pytest.raises(FileNotFoundError, match="no architecture file"):
        with fixed_arch(str(tmp_path / "nope.json")):
            pass


def test_a_model_space_is_a_working_model_with_defaults():
    space = Space()
    assert space(torch.rand(2, 4)).shape == (2, 2)
    assert isinstance(model_space_mutables(space)["_mutation_1"].values, list)


def test_original_state_dict_hooks_move_supernet_weights():
    from nniray.nas.utils import original_state_dict_hooks

    class Sup(nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.op = nn.LayerChoice({"a": nn.Linear(3, 3), "b": nn.Linear(3, 3, bias=False)}, label="op")
            self.rep = nn.Repeat(lambda: nn.Linear(3, 3), (1, 2), label="d")

    supernet = Sup()
    sd = supernet.state_dict()
    assert "op.b.weight" in sd and "rep.blocks.1.weight" in sd
    with fixed_arch({"op": "b", "d": 2}):
        child = Sup()
    assert "op.weight" in child.state_dict()
    with original_state_dict_hooks(child):
        keys = set(child.state_dict())
        assert "op.b.weight" in keys
        child.load_state_dict({k: v for k, v in sd.items() if k.startswith("op.b.")}, strict=False)
    assert torch.equal(child.op.weight, supernet.op["b"].weight)
    assert "op.weight" in child.state_dict()  # hooks removed after the block


def test_space_pickles_and_rebuilds_in_another_process(tmp_path):
    # the space class lives in __main__ of the first process; cloudpickle carries it by value
    script = tmp_path / "make.py"
    script.write_text(textwrap.dedent('''
        import cloudpickle, sys
        import nniray.nas.nn as nn
        class Net(nn.ModelSpace):
            def __init__(self, width):
                super().__init__()
                self.fc = nn.Linear(2, nn.ValueChoice([width, width * 2], label="w"))
        space = Net(3)
        with open(sys.argv[1], "wb") as f:
            cloudpickle.dump(space, f)
    '''))
    out = tmp_path / "space.pkl"
    subprocess.run([sys.executable, str(script), str(out)], check=True)
    load = ("import pickle,sys; from nniray.nas.nn import freeze_model; s = pickle.load(open(sys.argv[1],'rb')); "
            "print(freeze_model(s, {'w': 6}).fc.out_features)")
    res = subprocess.run([sys.executable, "-c", load, str(out)], check=True, capture_output=True, text=True)
    assert res.stdout.strip() == "6"


def test_retiarii_aliases_are_the_same_objects():
    import nniray.retiarii.nn.pytorch as rnn
    import nniray.nas.nn.pytorch as pnn
    from nniray.retiarii import fixed_arch as f2, model_wrapper as mw
    assert rnn.LayerChoice is nn.LayerChoice is pnn.LayerChoice and f2 is fixed_arch and mw is model_wrapper
    assert rnn.Conv2d is nn.Conv2d and issubclass(nn.Conv2d, torch.nn.Conv2d)
