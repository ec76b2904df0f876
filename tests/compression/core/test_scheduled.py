import pytest
import torch
from torch import nn

from nniray.compression.base import EvaluatorError
from nniray.compression.pruning import AGPPruner, L1NormPruner, LevelPruner, LinearPruner, TaylorPruner
from nniray.compression.pruning.scheduled_pruner import agp_ratio, linear_ratio

from compression_core_helpers import make_evaluator


def test_schedule_formulas():
    assert [round(linear_ratio(0.5, t, 5), 12) for t in range(6)] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert [agp_ratio(0.8, t, 4) for t in range(5)] == pytest.approx(
        [0.0, 0.8 * (1 - 0.75 ** 3), 0.8 * (1 - 0.5 ** 3), 0.8 * (1 - 0.25 ** 3), 0.8])
    # initial ratio as in the formulas
    assert agp_ratio(1.0, 0, 10, initial=0.2) == pytest.approx(0.2)
    assert linear_ratio(1.0, 0, 10, initial=0.2) == pytest.approx(0.2)


class Flat(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)   # 640 weights
        self.out = nn.Linear(10, 3)

    def forward(self, x):
        return self.out(torch.relu(self.fc(x.flatten(1))))


def _run(schedule_cls, final, total_times, interval, max_steps):
    model = Flat()
    seen = []
    evaluator = make_evaluator(model, log=lambda m, step: seen.append(int((m.fc.weight_mask == 0).sum())
                                                                       if hasattr(m.fc, "weight_mask") else 0))
    inner = LevelPruner(model, [{"op_names": ["fc"], "sparse_ratio": final}])
    pruner = schedule_cls(inner, interval, total_times, evaluator)
    _, masks = pruner.compress(max_steps=max_steps)
    return seen, masks


def test_agp_pruner_sparsity_at_each_step():
    seen, masks = _run(AGPPruner, 0.8, 4, 2, 8)
    # updates after optimizer steps 1, 3, 5, 7 with floor(640 * agp_ratio(0.8, t, 4))
    goals = [int(640 * agp_ratio(0.8, t, 4) + 1e-6) for t in (1, 2, 3, 4)]
    assert goals == [296, 448, 504, 512]
    assert seen == [296, 296, 448, 448, 504, 504, 512, 512]
    assert int((masks["fc"]["weight"] == 0).sum()) == 512


def test_linear_pruner_sparsity_at_each_step():
    seen, _ = _run(LinearPruner, 0.5, 5, 1, 6)
    assert seen == [64, 128, 192, 256, 320, 320]


def test_scheduled_pruner_without_steps_runs_just_enough():
    seen, _ = _run(LinearPruner, 0.5, 3, 2, None)
    assert len(seen) == 5 and seen[-1] == 320


def test_scheduled_pruner_needs_training_evaluator():
    inner = L1NormPruner(Flat(), [{"op_names": ["fc"], "sparse_ratio": 0.5}])
    with pytest.raises(EvaluatorError, match="AGPPruner needs an evaluator providing training_func"):
        AGPPruner(inner, 1, 3)
    with pytest.raises(TypeError, match="from_compressor"):
        LinearPruner.from_compressor(inner, [])


def test_agp_with_taylor_inner_pruner():
    from compression_core_helpers import SmallCNN
    model = SmallCNN()
    evaluator = make_evaluator(model)
    inner = TaylorPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], evaluator, training_steps=1)
    _, masks = AGPPruner(inner, 1, 3).compress(max_steps=4)
    for name in ("conv1", "conv2"):
        assert masks[name]["bias"].tolist().count(0.0) == 4


def test_agp_and_linear_schedule_a_slim_pruner():
    """Issue 9 finding 10: NNI lets the scheduled pruners drive SlimPruner."""
    from nniray.compression.pruning import SlimPruner
    from compression_core_helpers import SmallCNN
    for cls in (AGPPruner, LinearPruner):
        torch.manual_seed(0)
        model = SmallCNN()
        ratios = []
        evaluator = make_evaluator(model, log=lambda m, step: ratios.append(
            float((m.bn1.weight_mask == 0).float().mean()) if hasattr(m.bn1, "weight_mask") else 0.0))
        inner = SlimPruner(model, [{"op_types": ["BatchNorm2d"], "sparse_ratio": 0.5}], evaluator, training_steps=1)
        pruner = cls(inner, 1, 3, evaluator)
        _, masks = pruner.compress(max_steps=4)
        assert int((masks["bn1"]["weight"] == 0).sum()) == 4
        assert ratios[0] < ratios[-1] == 0.5  # the goal rose over the run
        assert not inner._scalers or all(not s.requires_grad for s in inner._scalers.values())  # folded once
        x = torch.randn(2, 1, 8, 8)
        with torch.no_grad():
            wrapped = model(x)
        pruner.unwrap_model()
        with torch.no_grad():  # unwrapped weights x masks reproduce the wrapped model: factors are folded in
            for t in ("weight", "bias"):
                getattr(model.bn1, t).mul_(masks["bn1"][t])
            assert torch.allclose(model(x), wrapped, atol=1e-6)
