"""A small DDPG agent (Lillicrap et al. 2015) as used by AMC (He et al., arXiv 1802.03494).

The agent walks the prunable layers one by one; its continuous action in ``[0, 1]`` is the
(pre-constraint) sparse ratio of the current layer.  Exploration follows AMC: random actions for
``warmup`` episodes, then the actor's action plus truncated-normal noise whose width starts at
``init_delta`` and decays by ``delta_decay`` per episode.  Every transition of an episode gets the
episode's final reward minus a moving-average baseline, and the discount is 1 by default.

Written with plain torch: the agent is a few hundred parameters of MLP and a ring buffer, smaller
than adapting a general RL library to AMC's per-episode reward.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

__all__ = ["DDPGParams", "DDPGAgent", "ReplayBuffer", "truncated_normal"]


@dataclass
class DDPGParams:
    """``ddpg_params`` keys and their defaults (NNI's AMC signature: ``discount=1.0`` and ``tau=0.01``;
    the v1 docstring's 0.99 for both contradicts its own signature)."""
    hidden1: int = 300
    hidden2: int = 300
    lr_c: float = 1e-3
    lr_a: float = 1e-4
    warmup: int = 100
    discount: float = 1.0
    bsize: int = 64
    rmsize: int = 100
    window_length: int = 1
    tau: float = 0.01
    init_delta: float = 0.5
    delta_decay: float = 0.99
    max_episode_length: float = 1e9
    epsilon: int = 50000
    moving_alpha: float = 0.5

    @classmethod
    def from_dict(cls, params: Optional[Dict[str, Any]]) -> "DDPGParams":
        params = dict(params or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"ddpg_params has unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**params)


def truncated_normal(mean: float, sigma: float, low: float, high: float, rng: np.random.Generator) -> float:
    """A draw from N(mean, sigma) truncated to [low, high] (rejection sampling, clipped fallback)."""
    if sigma <= 0:
        return float(np.clip(mean, low, high))
    for _ in range(100):
        x = rng.normal(mean, sigma)
        if low <= x <= high:
            return float(x)
    return float(np.clip(mean, low, high))


class Actor(nn.Module):
    def __init__(self, n_states: int, hidden1: int, hidden2: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_states, hidden1), nn.ReLU(), nn.Linear(hidden1, hidden2), nn.ReLU(),
                                 nn.Linear(hidden2, 1), nn.Sigmoid())

    def forward(self, s):
        return self.net(s)


class Critic(nn.Module):
    def __init__(self, n_states: int, hidden1: int, hidden2: int):
        super().__init__()
        self.fc_s = nn.Linear(n_states, hidden1)
        self.fc_a = nn.Linear(1, hidden1)
        self.net = nn.Sequential(nn.ReLU(), nn.Linear(hidden1, hidden2), nn.ReLU(), nn.Linear(hidden2, 1))

    def forward(self, s, a):
        return self.net(self.fc_s(s) + self.fc_a(a))


class ReplayBuffer:
    """Fixed-capacity ring buffer of (state, action, reward, next_state, done)."""

    def __init__(self, capacity: int, n_states: int):
        self.capacity = int(capacity)
        self.s = np.zeros((self.capacity, n_states), dtype=np.float32)
        self.a = np.zeros((self.capacity, 1), dtype=np.float32)
        self.r = np.zeros((self.capacity, 1), dtype=np.float32)
        self.s2 = np.zeros((self.capacity, n_states), dtype=np.float32)
        self.d = np.zeros((self.capacity, 1), dtype=np.float32)
        self.size = 0
        self._next = 0

    def add(self, s, a, r, s2, done) -> None:
        i = self._next
        self.s[i], self.a[i], self.r[i], self.s2[i], self.d[i] = s, a, r, s2, float(done)
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator):
        idx = rng.integers(0, self.size, size=min(batch_size, self.size))
        return tuple(torch.from_numpy(x[idx]) for x in (self.s, self.a, self.r, self.s2, self.d))


class DDPGAgent:
    def __init__(self, n_states: int, n_layers: int, params: DDPGParams, seed: Optional[int] = None):
        self.p = params
        self.rng = np.random.default_rng(seed)
        if seed is not None:
            torch.manual_seed(seed)
        self.actor = Actor(n_states, params.hidden1, params.hidden2)
        self.critic = Critic(n_states, params.hidden1, params.hidden2)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_target = copy.deepcopy(self.critic)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=params.lr_a)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=params.lr_c)
        # AMC sizes the memory per layer: rmsize transitions for each layer of an episode
        self.memory = ReplayBuffer(params.rmsize * max(1, n_layers), n_states)
        self.moving_average: Optional[float] = None

    def delta(self, episode: int) -> float:
        return self.p.init_delta * self.p.delta_decay ** max(0, episode - self.p.warmup)

    def select_action(self, state: np.ndarray, episode: int) -> float:
        """Random in warmup, else the actor's action with truncated-normal exploration."""
        if episode < self.p.warmup:
            return float(self.rng.uniform(0, 1))
        with torch.no_grad():
            mu = float(self.actor(torch.as_tensor(state, dtype=torch.float32)[None])[0, 0])
        return truncated_normal(mu, self.delta(episode), 0.0, 1.0, self.rng)

    def greedy_action(self, state: np.ndarray) -> float:
        with torch.no_grad():
            return float(self.actor(torch.as_tensor(state, dtype=torch.float32)[None])[0, 0])

    def observe_episode(self, transitions, reward: float) -> None:
        """Store an episode's transitions, all with ``reward`` minus the moving-average baseline."""
        if self.moving_average is None:
            self.moving_average = reward
        else:
            self.moving_average += self.p.moving_alpha * (reward - self.moving_average)
        advantage = reward - self.moving_average
        for s, a, s2, done in transitions:
            self.memory.add(s, a, advantage, s2, done)

    def update(self) -> Dict[str, float]:
        """One gradient step for critic and actor, then a soft target update."""
        s, a, r, s2, d = self.memory.sample(self.p.bsize, self.rng)
        with torch.no_grad():
            target_q = r + self.p.discount * (1 - d) * self.critic_target(s2, self.actor_target(s2))
        critic_loss = nn.functional.mse_loss(self.critic(s, a), target_q)
        self.critic_optim.zero_grad()
        critic_loss.backward()
        self.critic_optim.step()

        actor_loss = -self.critic(s, self.actor(s)).mean()
        self.actor_optim.zero_grad()
        actor_loss.backward()
        self.actor_optim.step()

        for net, target in ((self.actor, self.actor_target), (self.critic, self.critic_target)):
            for p, tp in zip(net.parameters(), target.parameters()):
                tp.data.mul_(1 - self.p.tau).add_(self.p.tau * p.data)
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item()}
