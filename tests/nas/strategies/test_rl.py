import numpy as np
import pytest
import torch

import nniray.mutable as m
from nniray.strategies.nas import Model, PolicyBasedRL, SequentialEngine, set_execution_engine
from nniray.strategies.nas.base import mutators_of
from nniray.strategies.nas.rl import Actor, ModelEvaluationEnv, Preprocessor

from .helpers import SPACE, run, score


def test_env_one_episode_is_one_model_and_reward_is_its_metric():
    space = {"a": m.Categorical([0, 1, 2, 3], label="a"), "b": m.Categorical(["x", "y"], label="b")}
    engine = SequentialEngine(lambda model: 7.0 if model.sample == {"a": 2, "b": "y"} else 1.0)
    set_execution_engine(engine)
    try:
        env = ModelEvaluationEnv(Model(space), mutators_of(space), {"a": [0, 1, 2, 3], "b": ["x", "y"]})
        obs, _ = env.reset()
        assert obs["action_dim"] == 4 and obs["cur_step"] == 0
        obs, r, done, _, _ = env.step(2)
        assert (r, done, obs["action_dim"]) == (0.0, False, 2)  # the next label has 2 candidates
        obs, r, done, _, _ = env.step(1)
        assert done and r == 7.0 and engine.models[-1].sample == {"a": 2, "b": "y"}
    finally:
        set_execution_engine(None)


def test_actor_masks_actions_beyond_the_current_label():
    actor = Actor(Preprocessor(4), 4)
    obs = {"action_history": np.zeros((2, 2), dtype=np.int64), "cur_step": np.array([0, 1]),
           "action_dim": np.array([4, 2])}
    logits, _ = actor(obs)
    probs = torch.softmax(logits, dim=-1)
    assert torch.all(probs[1, 2:] < 1e-6) and torch.all(probs[0] > 0)


@pytest.mark.slow  # ~50 s: tianshou's first buffer use compiles with numba, then PPO updates
def test_policy_based_rl_searches_within_budget():
    models = run(PolicyBasedRL(max_collect=4, trial_per_collect=8, seed=0), max_models=32)
    assert len(models) == 32
    assert all(SPACE["a"].contains({"a": x.sample["a"]}) and SPACE["b"].contains({"b": x.sample["b"]}) for x in models)
    assert all(x.metric == score(x.sample) for x in models)
