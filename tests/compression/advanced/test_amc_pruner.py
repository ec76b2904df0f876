import pytest
import torch

from adv_helpers import ConvNet, make_evaluator
from nniray.compression.pruning import AMCPruner

SMALL_DDPG = {"warmup": 3, "hidden1": 16, "hidden2": 16, "bsize": 8}


def masked_flops(masks, model):
    """FLOPs per sample of the masked ConvNet on 6x6 inputs, counting remaining filters only."""
    alive1 = float(masks["conv1"]["weight"].reshape(8, -1).amax(1).sum())
    alive2 = float(masks["conv2"]["weight"].reshape(16, -1).amax(1).sum())
    return alive1 * 36 * 9 + alive2 * 36 * 8 * 9 + 16 * 3


@pytest.mark.parametrize("target", ["flops", "params"])
def test_every_episode_meets_the_resource_budget(target):
    torch.manual_seed(0)
    model = ConvNet()
    pruner = AMCPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], make_evaluator(model),
                       total_episode=6, target=target, ddpg_params=SMALL_DDPG, seed=0)
    _, masks = pruner.compress()
    assert len(pruner.history) == 6
    for h in pruner.history:
        assert h["remaining"] <= 0.5 * h["total"] + 1e-6
        assert all(r <= 0.8 + 1e-9 for r in h["sparse_ratios"].values())
    full_flops = 8 * 36 * 9 + 16 * 36 * 8 * 9 + 16 * 3
    full_params = 8 * 9 + 16 * 72 + 48
    if target == "flops":
        assert masked_flops(masks, model) <= 0.5 * full_flops
    else:
        kept = sum(float(masks[k]["weight"].sum()) for k in ("conv1", "conv2")) + 48
        assert kept <= 0.5 * full_params
    best = pruner.get_best_result()
    assert best[3] == max(h["score"] for h in pruner.history)


def test_caps_and_validation():
    model = ConvNet()
    ev = make_evaluator(model)
    pruner = AMCPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.3, "max_sparse_ratio": 0.5}], ev,
                       total_episode=2, ddpg_params=SMALL_DDPG, seed=0)
    pruner.compress()
    assert all(r <= 0.5 for h in pruner.history for r in h["sparse_ratios"].values())
    model = ConvNet()
    with pytest.raises(ValueError, match="cannot be reached"):
        AMCPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.9}], make_evaluator(model),
                  total_episode=1).compress()
    model = ConvNet()
    with pytest.raises(ValueError, match="same value"):
        AMCPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.3}, {"op_names": ["conv2"], "sparse_ratio": 0.4}],
                  make_evaluator(model), total_episode=1)
    model = ConvNet()
    with pytest.raises(ValueError, match="ddpg_params has unknown keys"):
        AMCPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.3}], make_evaluator(model), total_episode=1,
                  ddpg_params={"hidden": 3})
