import pytest
import torch
from torch import nn

from adv_helpers import make_evaluator
from nniray.compression.pruning import ActivationAPoZRankPruner, ActivationMeanRankPruner


class FixedConv(nn.Module):
    """conv1 is a 1x1 conv whose 4 filters give hand-made activations on an all-ones input:
    filter c outputs bias b_c, so after ReLU channel c is 0 where b_c <= 0."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 1)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([0.0, 1.0, 0.0, 2.0]).reshape(4, 1, 1, 1))
            self.conv1.bias.copy_(torch.tensor([-1.0, -0.5, 3.0, 0.25]))

    def forward(self, x):
        return self.fc(torch.relu(self.conv1(x)).mean((2, 3)))


def data():
    # half the samples are +1 everywhere, half are -1 everywhere
    x = torch.cat([torch.ones(4, 1, 2, 2), -torch.ones(4, 1, 2, 2)])
    return x, torch.zeros(8, dtype=torch.long)


def evaluator(model):
    # lr=0: collection must not depend on training moving the weights
    return make_evaluator(model, data=data(), lr=0.0, batch=8)


def test_apoz_masks_the_channels_with_most_zeros():
    model = FixedConv()
    # outputs: ch0 = -1 (always 0 after relu), ch1 = +-1 - .5 (zero for -1 inputs: APoZ .5),
    # ch2 = 3 (never 0), ch3 = +-2 + .25 (zero for -1 inputs: APoZ .5)
    pruner = ActivationAPoZRankPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}], evaluator(model),
                                      training_steps=1)
    _, masks = pruner.compress()
    # importance 1-APoZ = [0, .5, 1, .5]: prune ch0 and, on the tie, the lower index ch1
    assert masks["conv1"]["weight"].flatten().tolist() == [0, 0, 1, 1]
    assert masks["conv1"]["bias"].tolist() == [0, 0, 1, 1]


def test_mean_rank_masks_the_smallest_mean_activations():
    model = FixedConv()
    # means after relu: ch0 0, ch1 (.5+0)/2=.25, ch2 3, ch3 (2.25+0)/2=1.125
    pruner = ActivationMeanRankPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}], evaluator(model),
                                      training_steps=1)
    _, masks = pruner.compress()
    assert masks["conv1"]["weight"].flatten().tolist() == [0, 0, 1, 1]
    # with relu6 the ranking is unchanged here; with identity the means are ch0 -1, ch1 -.5, ch2 3, ch3 .25
    model = FixedConv()
    pruner = ActivationMeanRankPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.25}], evaluator(model),
                                      training_steps=1, activation="identity")
    _, masks = pruner.compress()
    assert masks["conv1"]["weight"].flatten().tolist() == [0, 1, 1, 1]


def test_collects_exactly_training_steps_forward_passes():
    model = FixedConv()
    pruner = ActivationAPoZRankPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.25}],
                                      make_evaluator(model, data=data(), lr=0.0, batch=2), training_steps=3)
    pruner.compress()
    assert pruner.last_statistics.batches["conv1"] == 3
    assert pruner.last_statistics.counts["conv1"] == 3 * 2 * 4   # 3 batches of 2 samples x 2x2 positions


def test_longer_training_keeps_masks_and_agp_can_drive_it():
    from nniray.compression.pruning import AGPPruner
    steps = []
    model = FixedConv()
    pruner = ActivationAPoZRankPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}],
                                      make_evaluator(model, data=data(), lr=0.0, batch=2, steps_log=steps),
                                      training_steps=2)
    _, masks = pruner.compress(max_steps=4)        # masks after 2 steps, then 2 more steps with masks
    assert len(steps) == 4 and pruner.last_statistics.batches["conv1"] == 2
    assert masks["conv1"]["weight"].flatten().tolist() == [0, 0, 1, 1]
    model = FixedConv()
    inner = ActivationAPoZRankPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}],
                                     make_evaluator(model, data=data(), lr=0.0, batch=2), training_steps=1)
    _, masks = AGPPruner(inner, interval_steps=1, total_times=2).compress()
    assert masks["conv1"]["weight"].flatten().tolist() == [0, 0, 1, 1]


def test_bad_arguments():
    model = FixedConv()
    with pytest.raises(ValueError, match="training_steps"):
        ActivationAPoZRankPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}], evaluator(model), 0)
    with pytest.raises(ValueError, match="activation"):
        ActivationAPoZRankPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}], evaluator(model), 1,
                                 activation="swish2")
    with pytest.raises(ValueError, match="needs an evaluator"):
        ActivationAPoZRankPruner(model, [{"op_names": ["conv1"], "sparse_ratio": 0.5}], None, 1)
