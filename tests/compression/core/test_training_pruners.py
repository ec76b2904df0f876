import pytest
import torch
import torch.nn.functional as F

from nniray.compression import TorchEvaluator
from nniray.compression.base import EvaluatorError
from nniray.compression.base.sparsity import reduce_blocks
from nniray.compression.pruning import MovementPruner, SlimPruner, TaylorPruner
from nniray.compression.pruning.movement_pruner import movement_ratio

from compression_core_helpers import SmallCNN, make_data, make_evaluator


def test_missing_evaluator_parts_are_named_before_any_work():
    model = SmallCNN()
    before = {n: p.clone() for n, p in model.state_dict().items()}
    eval_only = TorchEvaluator(evaluating_func=lambda m: 1.0)
    with pytest.raises(EvaluatorError, match="TaylorPruner needs the evaluator's training_func, optimizers, "
                                             "training_step"):
        TaylorPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], eval_only, training_steps=2)
    with pytest.raises(EvaluatorError, match="SlimPruner needs an evaluator providing training_func"):
        SlimPruner(model, [{"op_types": ["BatchNorm2d"], "sparse_ratio": 0.5}], None, training_steps=2)
    with pytest.raises(EvaluatorError, match="MovementPruner needs the evaluator's training_step"):
        MovementPruner(model, [{"op_types": ["Linear"], "sparse_ratio": 0.5}],
                       TorchEvaluator(lambda *a: None, make_evaluator(model)._user_optimizers[0]), 1, 3)
    # nothing was wrapped or changed
    assert not hasattr(model.conv1, "_nniray_wrapper")
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())


def test_taylor_importance_is_sum_of_squared_weight_times_grad():
    torch.manual_seed(1)
    model = SmallCNN()
    data = make_data()
    reference = SmallCNN()
    reference.load_state_dict(model.state_dict())
    # lr=0 keeps the weights, so 2 steps see the same weights and the first two batches
    evaluator = make_evaluator(model, data=data, lr=0.0)
    _, masks = TaylorPruner(model, [{"op_names": ["conv2"], "sparse_ratio": 0.5}], evaluator,
                            training_steps=2).compress()
    importance = torch.zeros(8, dtype=torch.float64)
    for x, y in data[:2]:
        reference.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        w, g = reference.conv2.weight.double(), reference.conv2.weight.grad.double()
        importance += reduce_blocks((w * g).pow(2), [1, -1, -1, -1]).flatten()
    keep = torch.ones(8)
    keep[torch.argsort(importance, stable=True)[:4]] = 0
    assert torch.equal(masks["conv2"]["bias"], keep)


def test_taylor_on_output_activation():
    model = SmallCNN()
    evaluator = make_evaluator(model)
    pruner = TaylorPruner(model, [{"op_names": ["conv1"], "target_names": ["_output_"], "sparse_ratio": 0.25}],
                          evaluator, training_steps=2)
    pruner.track_forward(torch.randn(2, 1, 8, 8))
    _, masks = pruner.compress()
    mask = masks["conv1"]["_output_"]
    # per_channel = last dim (NNI 3.0): the 6 columns of the 8x6x6 map, floor(0.25 * 6) = 1 pruned
    assert tuple(mask.shape) == (1, 1, 1, 6) and int((mask == 0).sum()) == 1


def test_slim_prunes_bn_channels_with_smallest_learned_factors():
    model = SmallCNN()
    evaluator = make_evaluator(model)
    pruner = SlimPruner(model, [{"op_types": ["BatchNorm2d"], "sparse_ratio": 0.25}], evaluator,
                        training_steps=3, regular_scale=0.1)
    _, masks = pruner.compress(max_steps=5)
    scale = pruner._scalers[("bn1", "weight")].detach().abs()
    keep = torch.ones(8)
    keep[torch.argsort(scale, stable=True)[:2]] = 0
    assert torch.equal(masks["bn1"]["weight"], keep)
    assert torch.equal(masks["bn1"]["bias"], keep)
    assert not scale.requires_grad and not torch.equal(scale, torch.ones(8))  # factors were trained then frozen


def test_slim_regularisation_shrinks_factors():
    factors = {}
    for reg in (0.0, 5.0):
        torch.manual_seed(0)
        model = SmallCNN()
        pruner = SlimPruner(model, [{"op_types": ["BatchNorm2d"], "sparse_ratio": 0.5}], make_evaluator(model),
                            training_steps=4, regular_scale=reg)
        pruner.compress()
        factors[reg] = pruner._scalers[("bn1", "weight")].abs().sum().item()
    assert factors[5.0] < factors[0.0]


def test_movement_schedule_values_and_masks_per_step():
    assert movement_ratio(0.5, 2, 2, 6) == 0.0
    assert movement_ratio(0.5, 4, 2, 6) == pytest.approx(0.5 * (1 - 0.5 ** 3))
    assert movement_ratio(0.5, 9, 2, 6) == 0.5
    seen = []
    model = SmallCNN()
    evaluator = make_evaluator(model, log=lambda m, s: seen.append(
        int((m.fc.weight_mask == 0).sum()) if hasattr(m.fc, "weight_mask") else 0))
    _, masks = MovementPruner(model, [{"op_names": ["fc"], "sparse_ratio": 0.5}], evaluator,
                              warmup_step=2, cooldown_begin_step=6).compress(max_steps=8)
    n = 3 * 128
    assert seen == [0, 0] + [int(n * movement_ratio(0.5, t, 2, 6) + 1e-6) for t in range(3, 9)]
    assert int((masks["fc"]["weight"] == 0).sum()) == n // 2


def test_movement_scores_are_minus_sum_of_weight_times_grad():
    torch.manual_seed(2)
    model = SmallCNN()
    data = make_data()
    reference = SmallCNN()
    reference.load_state_dict(model.state_dict())
    evaluator = make_evaluator(model, data=data, lr=0.0)
    # warmup 3 of a 4-step run: no mask in the first 3 steps, so the reference needs no mask either
    pruner = MovementPruner(model, [{"op_names": ["fc"], "sparse_ratio": 0.5}], evaluator, warmup_step=3,
                            cooldown_begin_step=4)
    pruner.compress(max_steps=3)
    score = torch.zeros(3, 128)
    for x, y in data[:3]:
        reference.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        score -= reference.fc.weight.detach() * reference.fc.weight.grad
    assert torch.allclose(pruner._scores[("fc", "weight")].detach(), score, atol=1e-6)


def test_movement_argument_checks():
    model = SmallCNN()
    with pytest.raises(ValueError, match="0 <= warmup_step < cooldown_begin_step"):
        MovementPruner(model, [{"op_names": ["fc"], "sparse_ratio": 0.5}], make_evaluator(model), 5, 5)


def test_taylor_from_compressor_keeps_l1_masks_and_evaluator():
    from nniray.compression.pruning import L1NormPruner
    model = SmallCNN()
    evaluator = make_evaluator(model)
    first = L1NormPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}], evaluator)
    _, m1 = first.compress()
    second = TaylorPruner.from_compressor(first, [{"op_names": ["conv2"], "sparse_ratio": 0.25}], 2)
    assert second.evaluator is evaluator and second.training_steps == 2
    _, m2 = second.compress()
    assert torch.equal(m2["conv1"]["weight"], m1["conv1"]["weight"])
    assert m2["conv2"]["bias"].tolist().count(0.0) == 2


def test_movement_threshold_targets_and_regular_scale():
    pruned = {}
    for reg in (0.0, 50.0):
        torch.manual_seed(0)
        model = SmallCNN()
        pruner = MovementPruner(model, [{"op_names": ["fc"], "sparse_threshold": 0.5}], make_evaluator(model),
                                warmup_step=1, cooldown_begin_step=4, regular_scale=reg)
        _, masks = pruner.compress(max_steps=6)
        scores = torch.sigmoid(pruner._scores[("fc", "weight")].detach())
        assert torch.equal(masks["fc"]["weight"], (scores >= 0.5).float())  # pruned iff sigmoid(S) < threshold
        pruned[reg] = (masks["fc"]["weight"] == 0).float().mean().item()
    assert 0.0 < pruned[0.0] < 1.0
    assert pruned[50.0] > pruned[0.0]  # the sigmoid(S) penalty drives scores down
