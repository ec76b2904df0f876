import pytest
import torch

from adv_helpers import ConvNet, Twin, make_evaluator
from nniray.compression.pruning import AMCPruner

SMALL_DDPG = {"warmup": 3, "hidden1": 16, "hidden2": 16, "bsize": 8}


def masked_flops(masks, model):
    """FLOPs per sample of the masked ConvNet on 6x6 inputs, counting remaining filters only."""
    alive1 = float(masks["conv1"]["weight"].reshape(8, -1).amax(1).sum())
    alive2 = float(masks["conv2"]["weight"].reshape(16, -1).amax(1).sum())
    return alive1 * 36 * 9 + alive2 * 36 * 8 * 9 + 16 * 3


@pytest.mark.parametrize("target", ["flops", "params"])
def test_every_episode_meets_the_masked_resource_budget(target):
    torch.manual_seed(0)
    model = ConvNet()
    pruner = AMCPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], make_evaluator(model),
                       total_episode=6, target=target, ddpg_params=SMALL_DDPG, seed=0, resource_mode="masked")
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


@pytest.mark.parametrize("target", ["flops", "params"])
def test_speedup_resource_budget_holds_after_real_speedup(target):
    from nniray.compression.speedup import ModelSpeedup
    from nniray.compression.utils import count_flops_params
    torch.manual_seed(0)
    model = ConvNet()
    x = torch.zeros(1, 1, 6, 6)
    flops0, _, _ = count_flops_params(model, x, verbose=False)
    weights0 = sum(m.weight.numel() for m in (model.conv1, model.conv2, model.fc))
    pruner = AMCPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.6}], make_evaluator(model, dummy_input=x),
                       total_episode=4, target=target, ddpg_params=SMALL_DDPG, seed=0)
    env = pruner.make_env()
    # conv1's channels are also conv2's input channels: A[conv2, conv1] = 1
    names = ["conv1", "conv2", "fc"]
    assert env.resource.coeff.tolist() == [[1, 0], [1, 1], [0, 1]]
    _, masks = pruner.compress()
    for h in pruner.history:
        assert h["remaining"] <= 0.4 * h["total"] + 1e-6
    pruner.unwrap_model()
    ModelSpeedup(model, x, masks).speedup_model()
    if target == "flops":
        assert count_flops_params(model, x, verbose=False)[0] <= 0.4 * flops0
    else:
        assert sum(getattr(model, n).weight.numel() for n in names) <= 0.4 * weights0


def test_caps_and_validation():
    model = ConvNet()
    ev = make_evaluator(model)
    pruner = AMCPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.3, "max_sparse_ratio": 0.5}], ev,
                       total_episode=2, ddpg_params=SMALL_DDPG, seed=0)
    pruner.compress()
    assert all(r <= 0.5 for h in pruner.history for r in h["sparse_ratios"].values())
    model = ConvNet()
    with pytest.raises(ValueError, match="cannot be reached"):
        AMCPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.99}], make_evaluator(model),
                  total_episode=1).compress()
    model = ConvNet()
    with pytest.raises(ValueError, match="same value"):
        AMCPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.3}, {"op_names": ["conv2"], "sparse_ratio": 0.4}],
                  make_evaluator(model), total_episode=1)
    model = ConvNet()
    with pytest.raises(ValueError, match="ddpg_params has unknown keys"):
        AMCPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.3}], make_evaluator(model), total_episode=1,
                  ddpg_params={"hidden": 3})


def test_dependency_group_is_one_decision_and_budget_still_holds():
    torch.manual_seed(0)
    model = Twin()
    cfg = [{"op_names": ["a", "b"], "sparse_ratio": 0.4, "dependency_group_id": 1},
           {"op_names": ["c"], "sparse_ratio": 0.4}]
    pruner = AMCPruner(model, cfg, make_evaluator(model, dummy_input=torch.zeros(1, 1, 6, 6)), total_episode=4,
                       ddpg_params=SMALL_DDPG, seed=0)
    env = pruner.make_env()
    assert [layer.members for layer in env.layers] == [["a", "b"], ["c"]]
    _, masks = pruner.compress()
    for h in pruner.history:
        assert h["sparse_ratios"]["a"] == h["sparse_ratios"]["b"]
        assert h["remaining"] <= 0.6 * h["total"] + 1e-6
    assert torch.equal(masks["a"]["weight"].reshape(8, -1).amax(1), masks["b"]["weight"].reshape(8, -1).amax(1))
