"""Sensitivity analysis on a real local Ray cluster gives the same CSV as in one process."""
from __future__ import annotations

import sys

import pytest
import torch

from nniray.actors.sensitivity_fanout import fan_out_sensitivity
from nniray.compression.utils import SensitivityAnalysis

X = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 4))


class Fidelity:
    """Agreement of the pruned model's argmax with the unpruned one's (deterministic)."""

    def __init__(self, model):
        self.model = model
        with torch.no_grad():
            self.ref = model(X).argmax(1)

    def __call__(self):
        with torch.no_grad():
            return (self.model(X).argmax(1) == self.ref).float().mean().item()


def _analysis(**kw):
    model = _model()
    return SensitivityAnalysis(model, Fidelity(model), sparsities=[0.25, 0.5, 0.75, 0.9], **kw)


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow  # Ray start and task workers importing torch: ~40 s on the shared machine
@pytest.mark.parametrize("early", [{}, {"early_stop_mode": "dropped", "early_stop_value": 0.05}])
def test_same_csv_as_one_process(ray_local, tmp_path, early):
    local = _analysis(**early)
    local.analysis()
    local.export(tmp_path / "local.csv")
    fanned = _analysis(**early)
    fan_out_sensitivity(fanned)
    fanned.export(tmp_path / "ray.csv")
    assert (tmp_path / "ray.csv").read_text() == (tmp_path / "local.csv").read_text()
    assert fanned.ori_metric == local.ori_metric == 1.0
    if early:
        assert any(len(row) < 4 for row in local.sensitivities.values())  # the early stop really cut rows


@pytest.mark.slow
def test_unknown_layer_is_refused(ray_local):
    with pytest.raises(ValueError, match="not Conv1d/Conv2d"):
        fan_out_sensitivity(_analysis(), specified_layers=["5"])
