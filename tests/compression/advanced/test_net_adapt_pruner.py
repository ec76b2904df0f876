import math

import pytest
import torch

from adv_helpers import ConvNet, Twin, make_evaluator
from nniray.compression.pruning import NetAdaptPruner


def masked_fraction(model, name):
    return float(1 - getattr(model, name).weight_mask.float().mean()) if hasattr(getattr(model, name),
                                                                                 "weight_mask") else 0.0


@pytest.mark.parametrize("algo", ["l1", "level"])
def test_each_iteration_removes_the_step(algo):
    torch.manual_seed(0)
    model = ConvNet()
    pruner = NetAdaptPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.3}], make_evaluator(model),
                            sparsity_per_iteration=0.1, pruning_algorithm=algo)
    pruner.compress()
    total = 72 + 1152
    step = 0.1 * total
    assert len(pruner.history) >= 3
    for h in pruner.history:
        block = 1 if algo == "level" else {"conv1": 9, "conv2": 72}[h["layer"]]
        assert h["saved"] == math.ceil(h["step"] / block - 1e-9) * block
        assert h["step"] <= h["saved"] < h["step"] + block
    assert [h["step"] for h in pruner.history[:-1]] == pytest.approx([step] * (len(pruner.history) - 1))
    assert pruner.current_sparsity() >= 0.3 - 1e-9


def test_picks_the_layer_that_costs_least_per_weight():
    torch.manual_seed(0)
    model = ConvNet()

    def score(m):  # pruning conv1 is 100x more harmful per weight than conv2
        return 1.0 - 100 * masked_fraction(m, "conv1") * 72 / 1224 - masked_fraction(m, "conv2") * 1152 / 1224

    pruner = NetAdaptPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.2}],
                            make_evaluator(model, evaluating_func=score), sparsity_per_iteration=0.05)
    pruner.compress()
    assert {h["layer"] for h in pruner.history} == {"conv2"}
    assert pruner.get_best_result()[0] == len(pruner.history)


def test_total_iteration_caps_and_short_term_finetune_runs():
    torch.manual_seed(0)
    model = ConvNet()
    steps = []
    pruner = NetAdaptPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}],
                            make_evaluator(model, steps_log=steps), sparsity_per_iteration=0.05, total_iteration=2,
                            finetune_steps=2)
    pruner.compress()
    assert len(pruner.history) == 2
    # step 61.2 weights: conv1 can give 7 filters once, conv2 1 filter many times
    assert pruner.history[0]["candidates"] == 2
    assert len(steps) == 2 * sum(h["candidates"] for h in pruner.history)   # 2 steps per candidate


def test_validation():
    model = ConvNet()
    with pytest.raises(ValueError, match="sparsity_per_iteration"):
        NetAdaptPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], make_evaluator(model),
                       sparsity_per_iteration=1.5)


def test_dependency_group_is_one_candidate():
    torch.manual_seed(0)
    model = Twin()
    cfg = [{"op_names": ["a", "b"], "sparse_ratio": 0.3, "dependency_group_id": 1},
           {"op_names": ["c"], "sparse_ratio": 0.3}]

    def score(m):  # make the group the cheapest to prune
        return 1.0 - masked_fraction(m, "c")

    pruner = NetAdaptPruner(model, cfg, make_evaluator(model, evaluating_func=score), sparsity_per_iteration=0.02)
    _, masks = pruner.compress()
    assert pruner.history[0]["layer"] == "a+b"
    # one channel of a (9 weights) and of b (25 weights) per block: 0.02 * 1386 = 27.7 -> 1 block = 34 weights
    assert pruner.history[0]["saved"] == 34
    assert torch.equal(masks["a"]["weight"].reshape(8, -1).amax(1), masks["b"]["weight"].reshape(8, -1).amax(1))
