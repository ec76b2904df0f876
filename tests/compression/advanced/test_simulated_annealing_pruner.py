import pytest
import torch

from adv_helpers import ConvNet, Twin, make_evaluator
from nniray.compression.pruning import SimulatedAnnealingPruner
from nniray.compression.pruning._advanced.annealing import temperature_schedule


def masked_fraction(model, name):
    return float(1 - getattr(model, name).weight_mask.float().mean())


def test_schedule_and_every_candidate_keeps_the_total():
    torch.manual_seed(0)
    model = ConvNet()
    # a constant score: every perturbation is accepted (exp(0) = 1), so the temperature goes
    # 100, 90, 81, ... and the search evaluates 1 + 16 candidates
    pruner = SimulatedAnnealingPruner(model, [{"op_types": ["Conv2d", "Linear"], "sparse_ratio": 0.5}],
                                      make_evaluator(model, evaluating_func=lambda m: 1.0), seed=0)
    _, masks = pruner.compress()
    temps = [h["temperature"] for h in pruner.history]
    assert temps == pytest.approx([100.0] + temperature_schedule())
    assert all(h["accepted"] for h in pruner.history)
    numel = pruner.numels()
    total = sum(numel.values())
    for h in pruner.history:
        r = h["sparse_ratios"]
        assert sum(r[k] * numel[k] for k in numel) / total == pytest.approx(0.5)
        # bigger layers never get a smaller ratio (conv2 1152 > fc 48 and conv1 72)
        assert r["conv2"] >= r["conv1"] - 1e-12 and r["conv2"] >= r["fc"] - 1e-12
    # realised masks: within channel rounding of the total
    pruned = sum(float((1 - masks[k]["weight"]).sum()) for k in numel)
    assert abs(pruned / total - 0.5) < 72 / total


def test_search_moves_towards_a_better_score():
    torch.manual_seed(0)
    model = ConvNet()

    def score(m):  # best when conv1 keeps most of its filters
        return 1.0 - masked_fraction(m, "conv1")

    pruner = SimulatedAnnealingPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}],
                                      make_evaluator(model, evaluating_func=score), seed=1,
                                      cool_down_rate=0.8)
    pruner.compress()
    first = pruner.history[0]["score"]
    _, _, _, best, cfg = pruner.get_best_result()
    assert best == max(h["score"] for h in pruner.history) >= first
    assert best == pytest.approx(1.0 - masked_fraction(model, "conv1"))
    assert {c["op_names"][0] for c in cfg} == {"conv1", "conv2"}


def test_requires_evaluating_func_and_validates_schedule():
    model = ConvNet()
    ev = make_evaluator(model)
    ev.evaluating_func = None
    with pytest.raises(ValueError, match="evaluating_func"):
        SimulatedAnnealingPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], ev)
    with pytest.raises(ValueError, match="cool_down_rate"):
        SimulatedAnnealingPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], make_evaluator(model),
                                 cool_down_rate=1.5)


def test_anneal_leaves_masks_as_found():
    from nniray.compression.pruning._advanced.annealing import AnnealingSchedule
    from nniray.compression.pruning.simulated_annealing_pruner import anneal
    import numpy as np
    torch.manual_seed(0)
    model = ConvNet()
    pruner = SimulatedAnnealingPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}],
                                      make_evaluator(model, evaluating_func=lambda m: 1.0))
    with pruner.bound_evaluator():
        best = anneal(pruner, 0.5, AnnealingSchedule(cool_down_rate=0.5), np.random.default_rng(0))
    assert set(best) == {"conv1", "conv2"}
    assert pruner.get_masks() == {}


def test_legacy_total_sparsity_is_the_total():
    torch.manual_seed(0)
    model = ConvNet()
    pruner = SimulatedAnnealingPruner(model, [{"op_types": ["Conv2d"], "total_sparsity": 0.6}],
                                      make_evaluator(model, evaluating_func=lambda m: 1.0), cool_down_rate=0.5)
    assert pruner.overall_target() == pytest.approx(0.6)
    pruner.compress()
    numel = pruner.numels()
    for h in pruner.history:
        assert sum(h["sparse_ratios"][k] * numel[k] for k in numel) / sum(numel.values()) == pytest.approx(0.6)


def test_dependency_group_members_share_one_ratio():
    torch.manual_seed(0)
    model = Twin()
    cfg = [{"op_names": ["a", "b"], "sparse_ratio": 0.5, "dependency_group_id": 1},
           {"op_names": ["c"], "sparse_ratio": 0.5}]
    pruner = SimulatedAnnealingPruner(model, cfg, make_evaluator(model, evaluating_func=lambda m: 1.0),
                                      cool_down_rate=0.5, seed=0)
    _, masks = pruner.compress()
    rows_a = masks["a"]["weight"].reshape(8, -1).amax(1)
    rows_b = masks["b"]["weight"].reshape(8, -1).amax(1)
    assert torch.equal(rows_a, rows_b)      # the same channels in both members
