import pytest
import torch

from adv_helpers import ConvNet, make_evaluator
from nniray.compression.pruning import LotteryTicketPruner
from nniray.compression.pruning.lottery_ticket_pruner import lottery_ticket_schedule, per_round_ratio


def test_schedule_compounds_per_round_ratio():
    sched = lottery_ticket_schedule(0.8, 5)
    assert per_round_ratio(0.8, 5) == pytest.approx(0.2752, abs=1e-4)
    assert sched[-1] == pytest.approx(0.8)
    remaining = 1.0
    for cum in sched:
        remaining *= 1 - per_round_ratio(0.8, 5)
        assert 1 - cum == pytest.approx(remaining)


def test_rounds_follow_schedule_masks_grow_and_weights_rewind():
    torch.manual_seed(0)
    model = ConvNet()
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    pruner = LotteryTicketPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.8}],
                                 make_evaluator(model, evaluating_func=lambda m: 0.0), total_iteration=3,
                                 training_steps=2)
    _, masks = pruner.compress()
    n1, n2 = 8 * 9, 16 * 8 * 9
    for h, cum in zip(pruner.history, lottery_ticket_schedule(0.8, 3)):
        assert h["sparse_ratios"]["conv1"] == pytest.approx(int(cum * n1 + 1e-9) / n1)
        assert h["sparse_ratios"]["conv2"] == pytest.approx(int(cum * n2 + 1e-9) / n2)
    # the latest round is kept, at the final sparsity
    assert pruner.get_best_result()[0] == 3
    assert float(1 - masks["conv2"]["weight"].mean()) == pytest.approx(int(0.8 * n2) / n2)
    # rewound: every kept weight (and everything else) is back at theta0
    w = pruner._weights["conv2"].original.detach()
    assert torch.equal(w, theta0["conv2.weight"])
    assert torch.equal(model.fc.weight.detach(), theta0["fc.weight"])


def test_masks_only_grow_between_rounds():
    torch.manual_seed(0)
    model = ConvNet()
    seen = []
    pruner = LotteryTicketPruner(model, [{"op_names": ["conv2"], "sparse_ratio": 0.9}], make_evaluator(model),
                                 total_iteration=3, training_steps=2)
    orig_update = pruner.update_masks

    def spy(m):
        seen.append(m["conv2"]["weight"].clone())
        orig_update(m)
    pruner.update_masks = spy
    pruner.compress()
    rounds = seen[:3]
    for a, b in zip(rounds, rounds[1:]):
        assert bool(((a == 0) <= (b == 0)).all())          # pruned stays pruned


def test_without_reset_weights_keep_training():
    torch.manual_seed(0)
    model = ConvNet()
    before = model.fc.weight.detach().clone()
    pruner = LotteryTicketPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}], make_evaluator(model),
                                 total_iteration=2, training_steps=2, reset_weights=False)
    pruner.compress()
    assert not torch.equal(model.fc.weight.detach(), before)


def test_best_result_is_the_last_round_with_its_score():
    torch.manual_seed(0)
    model = ConvNet()
    scores = iter([0.3, 0.9, 0.1])
    pruner = LotteryTicketPruner(model, [{"op_types": ["Conv2d"], "sparse_ratio": 0.6}],
                                 make_evaluator(model, evaluating_func=lambda m: next(scores)),
                                 total_iteration=3, training_steps=1)
    _, masks = pruner.compress()
    task_id, _, best_masks, score, cfg = pruner.get_best_result()
    assert (task_id, score) == (3, 0.1)
    assert [h["score"] for h in pruner.history] == [0.3, 0.9, 0.1]
    assert torch.equal(masks["conv2"]["weight"], best_masks["conv2"]["weight"])
    assert cfg[0]["op_names"] == ["conv1"] and cfg[0]["sparse_ratio"] == pytest.approx(int(0.6 * 72) / 72)
