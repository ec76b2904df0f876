"""``PolicyBasedRL(max_collect=100, trial_per_collect=20, policy_fn=None)`` on tianshou 2.x.

An episode builds one architecture: one step per label, the action picks a candidate (the
action space is ``Discrete(max #candidates)``, masked at each step to that label's number of
candidates), and the last step submits the model and waits for it; the reward is its metric
(0 for a failed model).  After each collect of ``trial_per_collect`` episodes the policy is
updated (``batch_size=64, repeat=5``) and the buffer cleared.  The default policy is PPO with
``gamma=1.0`` and Adam(lr=1e-4), actor and critic sharing NNI's preprocessor (an embedding of
the actions so far and a 1-layer LSTM, hidden size 64).  ``policy_fn(env) -> tianshou
Algorithm`` replaces it (e.g. REINFORCE).  Episodes run one at a time (tianshou's vector envs are
sequential or multi-process; NNI used threads), so this strategy uses one trial slot.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from ._space import finite_candidates, model_of, space_of
from .base import BaseStrategy, InvalidMutation, ModelStatus, get_execution_engine, submit_models, wait_models

log = logging.getLogger("nniray.nas.strategy")

try:  # optional dependency (nniray[rl])
    import gymnasium as gym
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - reported when the strategy is built
    gym = None


def _require() -> None:
    if gym is None:
        raise ImportError("PolicyBasedRL needs tianshou and gymnasium: pip install nniray[rl]")
    import tianshou  # noqa: F401


class ModelEvaluationEnv(gym.Env if gym is not None else object):  # type: ignore[misc]
    """One episode = one architecture; the reward is its metric."""

    def __init__(self, base_model: Any, mutators: list, space: dict[str, list]) -> None:
        self.base_model, self.mutators = base_model, mutators
        self.labels = list(space)
        self.candidates = [space[k] for k in self.labels]
        self.num_steps = len(self.labels)
        self.max_dim = max(len(c) for c in self.candidates)
        self.action_space = gym.spaces.Discrete(self.max_dim)
        self.observation_space = gym.spaces.Dict({
            "action_history": gym.spaces.MultiDiscrete([self.max_dim + 1] * self.num_steps),
            "cur_step": gym.spaces.Discrete(self.num_steps + 1),
            "action_dim": gym.spaces.Discrete(self.max_dim + 1),
        })
        self._history = np.zeros(self.num_steps, dtype=np.int64)
        self._step = 0
        self._sample: dict = {}
        self.last_model = None

    def _obs(self) -> dict:
        dim = len(self.candidates[self._step]) if self._step < self.num_steps else self.max_dim
        return {"action_history": self._history.copy(), "cur_step": self._step, "action_dim": dim}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self._history[:] = 0
        self._step, self._sample = 0, {}
        return self._obs(), {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        cands = self.candidates[self._step]
        a = int(action) % len(cands)  # masked logits make an invalid action practically impossible
        self._sample[self.labels[self._step]] = cands[a]
        self._history[self._step] = a + 1
        self._step += 1
        if self._step < self.num_steps:
            return self._obs(), 0.0, False, False, {}
        reward = 0.0
        try:
            model = model_of(self.base_model, self.mutators, dict(self._sample)).freeze()
        except InvalidMutation as e:
            log.warning("invalid model skipped: %s", e)
            return self._obs(), 0.0, True, False, {}
        submit_models(model)
        wait_models(model)
        self.last_model = model
        if model.status == ModelStatus.Trained and model.metric is not None:
            reward = float(model.metric)
        return self._obs(), reward, True, False, {}


if gym is not None:
    class Preprocessor(nn.Module):
        """Embedding of the actions so far + LSTM; the state at the current step."""

        def __init__(self, max_dim: int, hidden: int = 64) -> None:
            super().__init__()
            self.embedding = nn.Embedding(max_dim + 1, hidden)
            self.rnn = nn.LSTM(hidden, hidden, batch_first=True)
            self.hidden = hidden

        def forward(self, obs: Any) -> torch.Tensor:
            history = torch.as_tensor(np.asarray(obs["action_history"]), dtype=torch.long)
            step = torch.as_tensor(np.asarray(obs["cur_step"]), dtype=torch.long).clamp(max=history.shape[1] - 1)
            out, _ = self.rnn(self.embedding(history))
            return out[torch.arange(out.shape[0]), step]

    from tianshou.utils.net.common import AbstractDiscreteActor

    class Actor(AbstractDiscreteActor):
        def __init__(self, preprocess: Preprocessor, max_dim: int) -> None:
            super().__init__(output_dim=max_dim)
            self.preprocess = preprocess
            self.head = nn.Linear(preprocess.hidden, max_dim)
            self.max_dim = max_dim

        def get_preprocess_net(self) -> nn.Module:
            return self.preprocess

        def get_output_dim(self) -> int:
            return self.max_dim

        def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple[torch.Tensor, Any]:
            logits = self.head(self.preprocess(obs))
            dim = torch.as_tensor(np.asarray(obs["action_dim"]), dtype=torch.long)
            mask = torch.arange(self.max_dim)[None, :] >= dim[:, None]
            return logits.masked_fill(mask, -1e9), state

    class Critic(nn.Module):
        def __init__(self, preprocess: Preprocessor) -> None:
            super().__init__()
            self.preprocess = preprocess
            self.head = nn.Linear(preprocess.hidden, 1)

        def forward(self, obs: Any, **kwargs: Any) -> torch.Tensor:
            return self.head(self.preprocess(obs))


def default_policy_fn(env: ModelEvaluationEnv) -> Any:
    from tianshou.algorithm import PPO
    from tianshou.algorithm.modelfree.reinforce import DiscreteActorPolicy
    from tianshou.algorithm.optim import AdamOptimizerFactory
    pre = Preprocessor(env.max_dim)
    policy = DiscreteActorPolicy(actor=Actor(pre, env.max_dim), action_space=env.action_space,
                                 observation_space=env.observation_space)
    return PPO(policy=policy, critic=Critic(pre), optim=AdamOptimizerFactory(lr=1e-4), gamma=1.0)


class PolicyBasedRL(BaseStrategy):
    def __init__(self, max_collect: int = 100, trial_per_collect: int = 20,
                 policy_fn: Callable[[ModelEvaluationEnv], Any] | None = None, seed: int | None = None) -> None:
        _require()
        self.max_collect, self.trial_per_collect = max_collect, trial_per_collect
        self.policy_fn = policy_fn or default_policy_fn
        self.seed = seed

    def run(self, base_model, applied_mutators) -> None:
        from tianshou.data import Collector, VectorReplayBuffer
        from tianshou.env import DummyVectorEnv
        from tianshou.utils.torch_utils import policy_within_training_step
        if self.seed is not None:
            torch.manual_seed(self.seed)
            np.random.seed(self.seed)
        space = finite_candidates(space_of(base_model, applied_mutators), "PolicyBasedRL")
        env = ModelEvaluationEnv(base_model, applied_mutators, space)
        algo = self.policy_fn(env)
        venv = DummyVectorEnv([lambda: env])
        buffer = VectorReplayBuffer(20000, len(venv))
        collector = Collector(algo, venv, buffer)
        engine = get_execution_engine()
        collector.reset()
        for i in range(self.max_collect):
            if engine.budget_exhausted():
                return
            with policy_within_training_step(algo.policy):
                collector.collect(n_episode=self.trial_per_collect)
                algo.update(buffer=collector.buffer, batch_size=64, repeat=5)
            collector.buffer.reset()
            log.info("PolicyBasedRL: collect %d done", i + 1)
