"""PPOTuner: a reinforcement-learning tuner trained with PPO (Schulman et al. 2017).

One trial is one episode.  Each hyperparameter (every key of the search space, nested ones
included, in a fixed order) is one decision step:

* ``choice``: the action is the option;
* numeric types are discretised into ``N_BINS`` = 10 equal-probability bins — equal width on
  the unit scale of bounded types (log scale for log types; ``randint`` with fewer than 10
  values gets one action per value), normal quantiles for ``normal``/``lognormal`` — and the
  value is drawn uniformly inside the chosen bin (then quantised as the type says).

The observation at step t is (one-hot of t, one-hot of the previous action); the policy and the
value function are small MLPs over it; the reward, given at the last step, is the trial's result
standardised over the update's batch (sign flipped for ``minimize``).  Every ``trials_per_update``
results the policy takes ``epochs_per_update`` passes of clipped-surrogate PPO with GAE(gamma,
lam), ``minibatch_size`` trials per minibatch.

Why not tianshou's trainer: tianshou drives an environment it steps itself, while a tuner is
asked for configurations and told results later, out of order, across processes.  The PPO
update is 40 lines of torch, written here so that no trainer, collector or replay buffer has to
be bent to the ask/tell protocol.  Parameters whose branch is inactive (nested choice) are still
decided but ignored.  Torch is imported when the tuner is built; one CPU thread.
"""
from __future__ import annotations

import logging
import math
from statistics import NormalDist
from typing import Any

import numpy as np

from nniray.search_space import Param, SearchSpace, SearchSpaceError, parse
from nniray.tuner import Tuner
from nniray.utils import OptimizeMode, extract_scalar_reward, parse_optimize_mode

logger = logging.getLogger(__name__)

N_BINS = 10
HIDDEN = 64


def _n_actions(p: Param) -> int:
    if p.type == "choice":
        return len(p.value)
    if p.type == "randint":
        return min(N_BINS, int(p.value[1]) - int(p.value[0]))
    return N_BINS


def _decode(p: Param, action: int, u: float) -> Any:
    """Internal value (choice index or number) for action ``action``, jitter ``u`` ∈ [0, 1)."""
    if p.type == "choice":
        return int(action)
    n = _n_actions(p)
    if p.type == "randint":
        lo, hi = int(p.value[0]), int(p.value[1])
        if hi - lo <= N_BINS:
            return lo + int(action)
        a = lo + math.ceil(action * (hi - lo) / n)
        b = lo + math.ceil((action + 1) * (hi - lo) / n)
        return int(a + min(int(u * (b - a)), b - a - 1))
    q = (action + u) / n
    if p.type in ("normal", "qnormal", "lognormal", "qlognormal"):
        z = NormalDist(float(p.value[0]), float(p.value[1])).inv_cdf(min(max(q, 1e-9), 1 - 1e-9))
        return p.quantize(math.exp(z) if p.type.endswith("lognormal") else z)
    return p.from_unit(q)


def _encode(p: Param, x: Any) -> int:
    """The action whose bin holds internal value ``x`` (used by ``import_data``)."""
    n = _n_actions(p)
    if p.type == "choice":
        return int(x)
    if p.type == "randint":
        lo, hi = int(p.value[0]), int(p.value[1])
        return int(x) - lo if hi - lo <= N_BINS else min(n - 1, int((int(x) - lo) * n / (hi - lo)))
    if p.type in ("normal", "qnormal", "lognormal", "qlognormal"):
        z = math.log(max(float(x), 1e-300)) if p.type.endswith("lognormal") else float(x)
        q = NormalDist(float(p.value[0]), float(p.value[1])).cdf(z)
    else:
        q = p.to_unit(x)
    return int(min(n - 1, max(0, math.floor(q * n))))


class PPOTuner(Tuner):
    """NNI's ``PPOTuner`` classArgs; ``seed`` makes suggestions and updates reproducible."""

    def __init__(self, optimize_mode: str = "maximize", trials_per_update: int = 20, epochs_per_update: int = 4,
                 minibatch_size: int = 4, ent_coef: float = 0.0, lr: float = 3e-4, vf_coef: float = 0.5,
                 max_grad_norm: float = 0.5, gamma: float = 0.99, lam: float = 0.95, cliprange: float = 0.2,
                 seed: int | None = None):
        for name, v in (("trials_per_update", trials_per_update), ("epochs_per_update", epochs_per_update),
                        ("minibatch_size", minibatch_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if trials_per_update % minibatch_size:
            raise ValueError(f"trials_per_update ({trials_per_update}) must be divisible by minibatch_size "
                             f"({minibatch_size})")
        for name, v, lo, hi in (("lr", lr, 0, math.inf), ("gamma", gamma, 0, 1), ("lam", lam, 0, 1),
                                ("cliprange", cliprange, 0, math.inf), ("max_grad_norm", max_grad_norm, 0, math.inf)):
            if not (lo < float(v) <= hi):
                raise ValueError(f"{name} must be in ({lo}, {hi}], got {v!r}")
        for name, v in (("ent_coef", ent_coef), ("vf_coef", vf_coef)):
            if not float(v) >= 0:
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        self.optimize_mode = parse_optimize_mode(optimize_mode)
        self.trials_per_update, self.epochs_per_update = trials_per_update, epochs_per_update
        self.minibatch_size = minibatch_size
        self.ent_coef, self.lr, self.vf_coef = float(ent_coef), float(lr), float(vf_coef)
        self.max_grad_norm, self.gamma, self.lam, self.cliprange = float(max_grad_norm), float(gamma), float(lam), float(cliprange)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.space: SearchSpace | None = None
        self.params: list[Param] = []
        self._pending: dict[Any, dict] = {}  # parameter id -> episode awaiting its result
        self._batch: list[dict] = []  # finished episodes for the next update
        self.n_updates = 0

    # -- model -----------------------------------------------------------------------------------------
    def _build(self) -> None:
        import torch
        from torch import nn
        torch.set_num_threads(1)
        self._torch = torch
        self.n_steps = len(self.params)
        self.max_actions = max(_n_actions(p) for p in self.params)
        self.obs_dim = self.n_steps + self.max_actions + 1  # +1: "no previous action"
        mask = torch.full((self.n_steps, self.max_actions), float("-inf"))
        for t, p in enumerate(self.params):
            mask[t, :_n_actions(p)] = 0.0
        self._mask = mask
        with torch.random.fork_rng():
            torch.manual_seed(int(self.rng.integers(2**31)))
            self.actor = nn.Sequential(nn.Linear(self.obs_dim, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN),
                                       nn.Tanh(), nn.Linear(HIDDEN, self.max_actions))
            self.critic = nn.Sequential(nn.Linear(self.obs_dim, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, 1))
            # small last layer: the initial policy is close to uniform (a random-search start)
            with torch.no_grad():
                self.actor[-1].weight.mul_(0.01)
                self.actor[-1].bias.zero_()
        self.opt = torch.optim.Adam(list(self.actor.parameters()) + list(self.critic.parameters()), lr=self.lr)
        self._gen = torch.Generator().manual_seed(int(self.rng.integers(2**31)))

    def _obs(self, actions: list[int]):
        """Observations of the steps of an episode whose actions are ``actions``."""
        obs = self._torch.zeros(len(actions), self.obs_dim)
        for t in range(len(actions)):
            obs[t, t] = 1.0
            obs[t, self.n_steps + (actions[t - 1] + 1 if t else 0)] = 1.0
        return obs

    def _dist(self, obs):
        """Policy over the whole episodes in ``obs`` (rows cycle through the n_steps steps)."""
        mask = self._mask.repeat(obs.shape[0] // self.n_steps, 1)
        return self._torch.distributions.Categorical(logits=self.actor(obs) + mask)

    def action_probabilities(self, step: int, previous_action: int | None = None) -> np.ndarray:
        """The policy's distribution over the actions of decision ``step`` (for inspection/tests)."""
        torch = self._torch
        obs = torch.zeros(1, self.obs_dim)
        obs[0, step] = 1.0
        obs[0, self.n_steps + (0 if previous_action is None else previous_action + 1)] = 1.0
        with torch.no_grad():
            logits = self.actor(obs) + self._mask[step]
            return torch.softmax(logits, -1)[0, :_n_actions(self.params[step])].numpy()

    # -- Tuner API ---------------------------------------------------------------------------------------
    def update_search_space(self, search_space: dict) -> None:
        space = parse(search_space)
        params = list(space.walk())
        if not params:
            raise SearchSpaceError("PPOTuner needs at least one hyperparameter in the search space")
        self.space, self.params = space, params
        self._pending.clear()
        self._batch.clear()
        self._build()

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.space is None:
            raise RuntimeError("PPOTuner: call update_search_space() before generate_parameters()")
        torch = self._torch
        actions: list[int] = []
        with torch.no_grad():
            for t in range(self.n_steps):
                obs = self._obs(actions + [0])[t: t + 1]  # row t depends on actions[:t] only
                probs = torch.softmax(self.actor(obs)[0] + self._mask[t], -1)
                actions.append(int(torch.multinomial(probs, 1, generator=self._gen)))
        jitter = self.rng.random(self.n_steps)
        flat = {p.key: _decode(p, a, u) for p, a, u in zip(self.params, actions, jitter)}
        self._pending[parameter_id] = self._episode(actions)
        return self.space.format(flat)

    def _episode(self, actions: list[int]) -> dict:
        torch = self._torch
        obs = self._obs(actions)
        with torch.no_grad():
            logp = self._dist(obs).log_prob(torch.tensor(actions))
            values = self.critic(obs).squeeze(-1)
        return {"actions": actions, "obs": obs, "logp": logp, "values": values}

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        reward = extract_scalar_reward(value)
        ep = self._pending.pop(parameter_id, None)
        if ep is None:
            logger.warning("PPOTuner: result for unknown parameter id %r ignored", parameter_id)
            return
        self._add(ep, reward)

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        if not success:  # a failed trial has no reward: drop its episode
            self._pending.pop(parameter_id, None)

    def import_data(self, data: list[dict]) -> None:
        """Past trials become episodes as if the current policy had chosen them (their bins);
        only the most recent ``5 × trials_per_update`` are used (on-policy data goes stale)."""
        if self.space is None:
            raise RuntimeError("PPOTuner: call update_search_space() before import_data()")
        for i, item in enumerate(data[-5 * self.trials_per_update:]):
            try:
                flat = self.space.flatten(item["parameter"])
                reward = extract_scalar_reward(item["value"])
            except (KeyError, ValueError, TypeError) as e:
                raise ValueError(f"import_data[{i}]: needs a 'parameter' dict of this search space and a numeric "
                                 f"'value': {e}") from None
            actions = [_encode(p, flat[p.key]) if p.key in flat else 0 for p in self.params]
            self._add(self._episode(actions), reward)

    # -- learning ------------------------------------------------------------------------------------------
    def _add(self, ep: dict, reward: float) -> None:
        ep["reward"] = reward if self.optimize_mode is OptimizeMode.Maximize else -reward
        self._batch.append(ep)
        if len(self._batch) >= self.trials_per_update:
            self._update(self._batch[: self.trials_per_update])
            self._batch = self._batch[self.trials_per_update:]

    def _update(self, episodes: list[dict]) -> None:
        torch = self._torch
        r = np.array([e["reward"] for e in episodes], dtype=float)
        r = (r - r.mean()) / (r.std() + 1e-8)  # standardised over the batch
        T = self.n_steps
        for e, rew in zip(episodes, r):
            rewards = torch.zeros(T)
            rewards[-1] = float(rew)
            v = e["values"]
            adv, last = torch.zeros(T), 0.0
            for t in reversed(range(T)):
                next_v = v[t + 1] if t + 1 < T else 0.0
                delta = rewards[t] + self.gamma * next_v - v[t]
                last = delta + self.gamma * self.lam * last
                adv[t] = last
            e["adv"], e["ret"] = adv, adv + v
        order = np.arange(len(episodes))
        for _ in range(self.epochs_per_update):
            self.rng.shuffle(order)
            for s in range(0, len(order), self.minibatch_size):
                mb = [episodes[i] for i in order[s: s + self.minibatch_size]]
                obs = torch.cat([e["obs"] for e in mb])
                act = torch.tensor([a for e in mb for a in e["actions"]])
                old_logp = torch.cat([e["logp"] for e in mb])
                adv = torch.cat([e["adv"] for e in mb])
                ret = torch.cat([e["ret"] for e in mb])
                if len(adv) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                dist = self._dist(obs)
                ratio = torch.exp(dist.log_prob(act) - old_logp)
                pg = -torch.min(ratio * adv, torch.clamp(ratio, 1 - self.cliprange, 1 + self.cliprange) * adv).mean()
                vf = ((self.critic(obs).squeeze(-1) - ret) ** 2).mean()
                loss = pg + self.vf_coef * vf - self.ent_coef * dist.entropy().mean()
                self.opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(self.actor.parameters()) + list(self.critic.parameters()),
                                               self.max_grad_norm)
                self.opt.step()
        self.n_updates += 1
