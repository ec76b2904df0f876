"""Unit tests of the algorithmic cores: masks, annealing, ADMM, DDPG/AMC env, activations, heads."""

import numpy as np
import pytest
import torch
from torch import nn

from nniray.compression.pruning._advanced import annealing, admm
from nniray.compression.pruning._advanced.masks import num_to_prune, ratio_mask, weight_mask
from nniray.compression.pruning._amc.ddpg import DDPGAgent, DDPGParams, truncated_normal
from nniray.compression.pruning._amc.env import AMCEnv, measure_layers
from nniray.compression.pruning.activation_pruner import ActivationStatistics, apoz_importance, mean_importance
from nniray.compression.pruning.transformer_head_pruner import (
    find_attention_groups, head_masks_to_module_masks, select_heads, weight_head_scores)

torch.set_num_threads(1)


# ---------------------------------------------------------------- masks
def test_num_to_prune_floors_with_float_tolerance():
    assert num_to_prune(0.3, 10) == 3          # 0.3 * 10 = 2.9999999999999996
    assert num_to_prune(0.25, 10) == 2
    assert num_to_prune(0.0, 10) == 0 and num_to_prune(1.0, 7) == 7
    with pytest.raises(ValueError, match="sparse_ratio"):
        num_to_prune(1.5, 4)


def test_ratio_mask_prunes_lowest_and_breaks_ties_by_index():
    scores = torch.tensor([3.0, 1.0, 1.0, 5.0, 0.5])
    assert ratio_mask(scores, 0.4).tolist() == [1, 0, 1, 1, 0]
    assert ratio_mask(scores, 0.6).tolist() == [1, 0, 0, 1, 0]


def test_weight_mask_l1_channels_and_monotone_with_old_mask():
    w = torch.tensor([[1.0, 1.0], [0.1, 0.1], [5.0, 0.0], [0.2, 0.3]])
    m = weight_mask(w, 0.5, "l1")
    assert m[:, 0].tolist() == [1, 0, 1, 0]
    # channel 0 already pruned: it must stay pruned and count towards the ratio
    old = torch.ones_like(w)
    old[0] = 0
    m2 = weight_mask(w, 0.5, "l1", old_mask=old)
    assert m2[:, 0].tolist() == [0, 0, 1, 1]


# ---------------------------------------------------------------- annealing
def test_temperature_schedule_default_has_16_steps():
    temps = annealing.temperature_schedule()
    assert temps[0] == 100 and temps[1] == pytest.approx(90) and temps[-1] >= 20 > temps[-1] * 0.9
    assert len(temps) == 16  # 100 * 0.9^15 = 20.6 >= 20 > 100 * 0.9^16


def test_random_and_perturbed_allocations_keep_the_total_and_size_order():
    rng = np.random.default_rng(0)
    numels = [100, 1000, 500, 50]
    alloc = annealing.random_allocation(numels, 0.6, rng)
    assert np.dot(alloc, numels) / sum(numels) == pytest.approx(0.6)
    assert list(np.argsort(alloc, kind="stable")) == list(np.argsort(numels, kind="stable"))
    for _ in range(20):
        alloc = annealing.perturb_allocation(alloc, numels, 0.6, 0.35, rng)
        assert np.dot(alloc, numels) / sum(numels) == pytest.approx(0.6)
        assert (alloc >= 0).all() and (alloc < 1).all()
        # bigger layers never get a smaller ratio
        order = np.argsort(numels)
        assert (np.diff(alloc[order]) >= -1e-12).all()


def test_allocation_respects_caps_and_rejects_infeasible():
    rng = np.random.default_rng(1)
    alloc = annealing.random_allocation([10, 10], 0.5, rng, max_ratios=[0.6, 0.6])
    assert (alloc <= 0.6 + 1e-12).all() and alloc.mean() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="max_sparse_ratio"):
        annealing.random_allocation([10, 10], 0.7, rng, max_ratios=[0.6, 0.6])


def test_annealing_acceptance_and_cooling():
    sched = annealing.AnnealingSchedule()
    rng = np.random.default_rng(0)
    assert sched.magnitude == pytest.approx(0.35)
    assert sched.accept(0.9, 0.5, rng)                      # better: always
    assert sched.temperature == pytest.approx(90)
    assert sched.magnitude == pytest.approx(0.9 * 0.35)
    # worse by 1000 at T=90: exp(-11) ~ 1.7e-5, rejected; no cooling until `patience` rejections
    for _ in range(9):
        assert not sched.accept(-1000.0, 0.0, rng)
    assert sched.temperature == pytest.approx(90)
    assert not sched.accept(-1000.0, 0.0, rng)
    assert sched.temperature == pytest.approx(81)
    with pytest.raises(ValueError, match="stop_temperature"):
        annealing.AnnealingSchedule(start_temperature=10, stop_temperature=20)


# ---------------------------------------------------------------- ADMM
def test_admm_z_is_projection_of_w_plus_u_and_u_accumulates_residual():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(4, 3))
    state = admm.ADMMState({"fc": w}, {"fc": 0.5}, {"fc": 1e-4})
    state.U["fc"] = torch.randn(4, 3) * 0.1
    u_old = state.U["fc"].clone()
    state.update()
    v = w.detach() + u_old
    # Z keeps the 6 largest |W+U| entries, zero elsewhere
    keep = v.abs().flatten().argsort(descending=True)[:6]
    expected = torch.zeros(12)
    expected[keep] = v.flatten()[keep]
    assert torch.equal(state.Z["fc"].flatten(), expected)
    assert torch.allclose(state.U["fc"], u_old + w.detach() - state.Z["fc"])
    assert state.masks()["fc"].sum() == 6
    # the projection is the nearest point of the constraint set: no other 6-sparse support is closer
    best = ((v - state.Z["fc"]) ** 2).sum()
    order = v.abs().flatten().argsort(descending=True)
    swapped = torch.cat([order[:5], order[6:7]])     # drop the 6th largest, keep the 7th instead
    other = torch.zeros(12)
    other[swapped] = v.flatten()[swapped]
    assert best < ((v.flatten() - other) ** 2).sum()


def test_admm_coarse_projection_removes_whole_rows_by_l2():
    x = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 0.1], [2.0, 2.0]])
    z = admm.project(x, 0.5, "coarse")
    assert z[:, 0].tolist() == [3.0, 0.0, 0.0, 2.0] and z[3, 1] == 2.0
    with pytest.raises(ValueError, match="granularity"):
        admm.project(x, 0.5, "medium")


def test_admm_gradient_hook_adds_penalty_gradient():
    w = nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 0.1]))
    state = admm.ADMMState({"w": w}, {"w": 0.5}, {"w": 0.1})
    state.update()  # Z = [1, -2, 0, 0], U = [0, 0, .5, .1]
    state.attach()
    (w * 0).sum().backward()  # the task loss contributes nothing
    expected = 0.1 * (w.detach() - state.Z["w"] + state.U["w"])
    assert torch.allclose(w.grad, expected)
    state.detach()
    w.grad = None
    (w * 0).sum().backward()
    assert torch.equal(w.grad, torch.zeros(4))


# ---------------------------------------------------------------- AMC
class _Chain(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(x.mean((2, 3)))


def test_measure_layers_counts_macs_per_sample():
    infos, total_flops, total_params = measure_layers(_Chain(), torch.zeros(2, 3, 4, 4), ["c1", "c2"])
    assert infos[0].flops == 8 * 16 * 3 * 9 and infos[1].flops == 16 * 16 * 8 * 9
    assert total_flops == 8 * 16 * 27 + 16 * 16 * 72 + 16 * 4
    assert total_params == 8 * 27 + 16 * 72 + 64


@pytest.mark.parametrize("target", ["flops", "params"])
def test_amc_env_any_action_sequence_meets_the_budget(target):
    infos, total_flops, total_params = measure_layers(_Chain(), torch.zeros(1, 3, 4, 4), ["c1", "c2"])
    for info in infos:
        info.max_ratio = 0.8
    total = total_flops if target == "flops" else total_params
    env = AMCEnv(infos, total, 0.5, target)
    rng = np.random.default_rng(0)
    for _ in range(50):
        env.reset()
        done = False
        while not done:
            _, ratio, done = env.step(rng.uniform())
        assert env.remaining_cost(env.ratios) <= 0.5 * total + 1e-6
        assert all(r <= 0.8 + 1e-9 for r in env.ratios)
        # whole channels
        assert all(abs(r * i.out_channels - round(r * i.out_channels)) < 1e-9 for r, i in zip(env.ratios, infos))
    with pytest.raises(ValueError, match="cannot be reached"):
        AMCEnv(infos, total, 0.95, target)


def test_truncated_normal_stays_in_bounds_and_ddpg_learns_shapes():
    rng = np.random.default_rng(0)
    xs = [truncated_normal(0.9, 0.5, 0.0, 1.0, rng) for _ in range(200)]
    assert min(xs) >= 0 and max(xs) <= 1
    agent = DDPGAgent(AMCEnv.N_STATES, 2, DDPGParams.from_dict({"warmup": 2, "hidden1": 8, "hidden2": 8, "bsize": 4}),
                      seed=0)
    assert agent.delta(0) == 0.5 and agent.delta(12) == pytest.approx(0.5 * 0.99 ** 10)
    s = np.zeros(AMCEnv.N_STATES, dtype=np.float32)
    agent.observe_episode([(s, 0.3, s, False), (s, 0.6, s, True)], reward=1.0)
    assert agent.memory.size == 2 and agent.memory.r[0, 0] == 0.0   # first reward is the baseline
    losses = agent.update()
    assert set(losses) == {"critic_loss", "actor_loss"}
    assert 0 <= agent.select_action(s, 5) <= 1
    with pytest.raises(ValueError, match="unknown keys"):
        DDPGParams.from_dict({"lr": 1})


# ---------------------------------------------------------------- activations
def test_apoz_and_mean_from_hand_made_activations():
    stats = ActivationStatistics("relu")
    conv = nn.Conv2d(1, 3, 1)
    # (N=2, C=3, 2x1): channel 0 all negative -> zero after relu; channel 1 half zero; channel 2 positive
    out = torch.tensor([[[[-1.0], [-2.0]], [[0.0], [4.0]], [[1.0], [1.0]]],
                        [[[-3.0], [-1.0]], [[2.0], [-5.0]], [[3.0], [1.0]]]])
    stats.update("c", out, conv)
    assert apoz_importance(stats, "c").tolist() == [0.0, 0.5, 1.0]
    assert mean_importance(stats, "c").tolist() == [0.0, 1.5, 1.5]
    stats.update("c", torch.ones(1, 3, 2, 1), conv)           # pooled over all positions seen
    assert torch.allclose(apoz_importance(stats, "c"), torch.tensor([2 / 6, 4 / 6, 1.0]))
    relu6 = ActivationStatistics("relu6")
    relu6.update("c", torch.full((1, 3, 1, 1), 10.0), conv)
    assert relu6.mean("c").tolist() == [6.0, 6.0, 6.0]
    lin = ActivationStatistics("relu")
    lin.update("l", torch.tensor([[[1.0, -1.0]], [[0.0, 2.0]]]), nn.Linear(2, 2))  # channel = last axis
    assert lin.apoz("l").tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="activation"):
        ActivationStatistics("tanhh")


# ---------------------------------------------------------------- heads
class _Attn(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.output = nn.Module()
        self.output.dense = nn.Linear(dim, dim)


class _Enc(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.ModuleList([nn.Module(), nn.Module()])
        for layer in self.layer:
            layer.attention = nn.Module()
            layer.attention.self = _Attn()
            layer.attention.output = nn.Module()
            layer.attention.output.dense = nn.Linear(8, 8)
        self.blk = nn.Module()
        self.blk.q_proj, self.blk.k_proj, self.blk.v_proj, self.blk.out_proj = (nn.Linear(8, 8) for _ in range(4))


def test_find_attention_groups_by_naming_convention():
    groups = find_attention_groups(_Enc())
    assert ["blk.q_proj", "blk.k_proj", "blk.v_proj", "blk.out_proj"] in groups
    assert ["layer.0.attention.self.query", "layer.0.attention.self.key", "layer.0.attention.self.value",
            "layer.0.attention.self.output.dense"] in groups
    assert len(groups) == 3


def test_weight_head_scores_and_selection_and_masks():
    q, k, v, o = (nn.Linear(4, 4, bias=True) for _ in range(4))
    for m in (q, k, v):
        with torch.no_grad():
            m.weight.copy_(torch.tensor([[1.0] * 4, [1.0] * 4, [0.1] * 4, [0.1] * 4]))
    s = weight_head_scores(q.weight, k.weight, v.weight, head_hidden_dim=2, p=1)
    assert torch.allclose(s, torch.tensor([8.0, 0.8]))
    keep = select_heads({0: s}, {0: 0.5}, global_sort=False)[0]
    assert keep.tolist() == [True, False]
    masks = head_masks_to_module_masks(["q", "k", "v", "o"], {"q": q, "k": k, "v": v, "o": o}, keep, 2)
    assert masks["q"]["weight"][:, 0].tolist() == [1, 1, 0, 0] and masks["q"]["bias"].tolist() == [1, 1, 0, 0]
    assert masks["o"]["weight"][0].tolist() == [1, 1, 0, 0] and "bias" not in masks["o"]
    # global sort pools heads across layers
    keep = select_heads({0: torch.tensor([5.0, 6.0]), 1: torch.tensor([1.0, 2.0])}, {0: 0.5, 1: 0.5}, True)
    assert keep[0].tolist() == [True, True] and keep[1].tolist() == [False, False]
    # already pruned heads stay pruned
    keep = select_heads({0: torch.tensor([5.0, 1.0, 3.0, 4.0])}, {0: 0.5}, False,
                        already_pruned={0: torch.tensor([False, True, True, True])})
    assert keep[0].tolist() == [False, False, True, True]
