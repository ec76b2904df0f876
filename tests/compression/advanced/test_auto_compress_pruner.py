import pytest
import torch

from adv_helpers import ConvNet, make_evaluator
from nniray.compression.pruning import AutoCompressPruner


def test_rounds_reach_the_schedule_with_growing_masks():
    torch.manual_seed(0)
    model = ConvNet(c1=8, c2=16)
    pruner = AutoCompressPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.75}], make_evaluator(model),
                                total_iteration=2, admm_params={"iterations": 2, "training_steps": 1},
                                sa_params={"cool_down_rate": 0.5}, seed=0)
    _, masks = pruner.compress()
    rounds = [h for h in pruner.history if str(h["task_id"]).startswith("round-")]
    assert [r["target"] for r in rounds] == pytest.approx([0.5, 0.75])
    numel = pruner.numels()
    total = sum(numel.values())
    for r in rounds:
        reached = sum(r["sparse_ratios"][k] * numel[k] for k in numel) / total
        # whole filters (9 and 72 weights) are pruned: within one filter of conv2 of the target
        assert abs(reached - r["target"]) <= 72 / total
    # round 2 only adds to round 1
    assert all(rounds[1]["sparse_ratios"][k] >= rounds[0]["sparse_ratios"][k] for k in numel)
    # annealing ran once per round: 1 + 3 candidates at T = 100, 50, 25 for cool_down_rate 0.5
    sa = [h for h in pruner.history if not str(h["task_id"]).startswith("round-")]
    assert len(sa) == 8
    # structured: whole filters
    rows = masks["conv2"]["weight"].reshape(16, -1).sum(1)
    assert set(rows.tolist()) <= {0.0, 72.0}
    assert pruner.get_best_result()[0] == 2


def test_parameter_validation():
    model = ConvNet()
    ev = make_evaluator(model)
    with pytest.raises(ValueError, match="admm_params has unknown keys"):
        AutoCompressPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], ev, 2, admm_params={"epochs": 1})
    with pytest.raises(ValueError, match="sa_params has unknown keys"):
        AutoCompressPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], ev, 2, sa_params={"temp": 1})
