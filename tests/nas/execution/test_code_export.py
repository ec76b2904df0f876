import importlib.util
import sys

import pytest
import torch

import nniray.nas.nn as nn
from nniray.nas import fixed_arch
from nniray.nas.execution.code_export import model_to_code


class Space(nn.ModelSpace):
    def __init__(self):
        super().__init__()
        self.conv = nn.LayerChoice({"c3": nn.Conv2d(1, 4, 3, padding=1), "c5": nn.Conv2d(1, 4, 5, padding=2)},
                                   label="conv")
        self.fc = nn.Linear(nn.ValueChoice([4, 8], label="w") * 0 + 4 * 64, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_code_export_is_standalone_torch(tmp_path):
    with fixed_arch({"conv": "c5", "w": 8}):
        model = Space()
    code = model_to_code(model)
    assert "nniray" not in code and "Conv2d(1, 4, kernel_size=(5, 5)" in code
    # the exported class runs on its own
    path = tmp_path / "exported.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("exported", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["exported"] = mod
    spec.loader.exec_module(mod)
    out = mod.ExportedModel()(torch.rand(2, 1, 8, 8))
    assert out.shape == (2, 10)


def test_untraceable_model_is_refused_with_the_reason():
    class Dyn(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    with pytest.raises(ValueError, match="torch.fx cannot trace Dyn"):
        model_to_code(Dyn())
