"""AMCPruner: AutoML for Model Compression (He et al., ECCV 2018) with a DDPG agent.

The agent visits the target layers in model order and picks each one's sparse ratio (whole output
channels).  The environment (``_amc/env.py``) clips every action so that the episode always meets
the resource budget — remove at least ``sparse_ratio`` of the model's FLOPs (``target='flops'``)
or weights (``target='params'``), counted over all Conv/Linear layers — and no layer exceeds its
``max_sparse_ratio`` (default 0.8, AMC's ``lbound=0.2`` preserve ratio).  The layers of one
``dependency_group_id`` are one decision (they prune the same channels).  Each episode's masks
(base ``pruning_algorithm``, default ``l1``) are scored by the evaluator's ``evaluating_func``;
the score is the reward (AMC's ``acc_reward``).  ``compress()`` applies the best episode.

Resources (``resource_mode``): ``'speedup'`` (default) counts what the model costs after
``ModelSpeedup`` — a removed channel also shrinks the layers that consume it — from a per-model
probe (``_amc/resource.py``; one speedup of a copy per target layer, done once); ``'masked'``
counts the masked model (only the removed filters, like ``count_flops_params`` before speedup).
If speedup cannot handle the model, the masked count is used with a warning.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any, Dict, List, Optional

import torch

from ._advanced.base import AdvancedPruner
from ._amc.ddpg import DDPGAgent, DDPGParams
from ._amc.env import AMCEnv, measure_layers, merge_units
from ._amc.resource import probe_speedup_resource

__all__ = ["AMCPruner", "DEFAULT_MAX_SPARSE_RATIO"]

DEFAULT_MAX_SPARSE_RATIO = 0.8


class AMCPruner(AdvancedPruner):
    """AMC in the NNI 3.0 interface.

    Parameters
    ----------
    model, config_list
        ``sparse_ratio`` is the share of the resource to remove (one value for all configs);
        ``max_sparse_ratio`` caps a layer (default 0.8).
    evaluator
        Needs ``evaluating_func``; its ``dummy_input`` is used to count FLOPs unless
        ``dummy_input`` is given here.
    total_episode
        Number of episodes (v1: ``train_episode=800``).
    dummy_input
        Example input for counting FLOPs.
    pruning_algorithm
        ``'l1'`` (default), ``'l2'`` or ``'fpgm'``: which channels a ratio removes.
    target
        ``'flops'`` (default) or ``'params'``.
    ddpg_params
        Agent settings, see :class:`~nniray.compression.pruning._amc.ddpg.DDPGParams` (hidden1=300,
        hidden2=300, lr_c=1e-3, lr_a=1e-4, warmup=100, discount=1.0, bsize=64, rmsize=100,
        tau=0.01, init_delta=0.5, delta_decay=0.99, ...).
    seed
        Seed of the agent (exploration and network initialisation).
    resource_mode
        ``'speedup'`` (default): FLOPs/weights after speedup; ``'masked'``: of the masked model.
    """

    _required_evaluator_parts = ("evaluating_func",)

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any, total_episode: int,
                 dummy_input: Any = None, pruning_algorithm: str = "l1", target: str = "flops",
                 ddpg_params: Optional[Dict[str, Any]] = None, seed: Optional[int] = None,
                 resource_mode: str = "speedup", existed_wrappers=None):
        if not isinstance(total_episode, int) or isinstance(total_episode, bool) or total_episode < 1:
            raise ValueError(f"AMCPruner: total_episode must be a positive int, got {total_episode!r}")
        if target not in ("flops", "params"):
            raise ValueError(f"AMCPruner: target must be 'flops' or 'params', got {target!r}")
        if resource_mode not in ("speedup", "masked"):
            raise ValueError(f"AMCPruner: resource_mode must be 'speedup' or 'masked', got {resource_mode!r}")
        self.resource_mode = resource_mode
        if pruning_algorithm == "level":
            raise ValueError("AMCPruner prunes channels: pruning_algorithm must be 'l1', 'l2' or 'fpgm', got 'level'")
        self.total_episode = total_episode
        self.target = target
        self.ddpg_params = DDPGParams.from_dict(ddpg_params)
        self.seed = seed
        self.history: List[Dict[str, Any]] = []
        super().__init__(model, config_list, evaluator, pruning_algorithm=pruning_algorithm,
                         existed_wrappers=existed_wrappers)
        ratios = sorted(set(self._user_ratios.values()))
        if len(ratios) != 1:
            raise ValueError(f"AMCPruner: sparse_ratio is the share of {target} to remove from the whole model, so "
                             f"every config needs the same value; got {ratios}")
        self.resource_ratio = ratios[0]
        self.dummy_input = dummy_input if dummy_input is not None else self._get_dummy_input()
        if self.dummy_input is None:
            raise ValueError("AMCPruner needs an example input to count FLOPs: pass dummy_input=... or build the "
                             "evaluator with dummy_input")

    def _caps(self) -> Dict[str, float]:
        return {name: float(ts.max_sparse_ratio) if ts.max_sparse_ratio is not None else DEFAULT_MAX_SPARSE_RATIO
                for name, ts in self._weights.items()}

    def make_env(self) -> AMCEnv:
        names = list(self._weights)
        layers, total_flops, total_params = measure_layers(self.bound_model, self.dummy_input, names)
        caps = self._caps()
        for info in layers:
            info.max_ratio = caps[info.name]
        units = self.units()
        layers = merge_units(layers, units)
        total = total_flops if self.target == "flops" else total_params
        resource = None
        if self.resource_mode == "speedup":
            resource = self._probe(units)
        return AMCEnv(layers, total, self.resource_ratio, self.target, resource)

    def _probe(self, units):
        """The after-speedup resource model, measured on an unwrapped copy; falls back to the
        masked count (with a warning) if speedup cannot handle the model."""
        was_wrapped = self._is_wrapped
        masks = self.get_masks()
        self.unwrap_model()
        try:
            clean = copy.deepcopy(self.bound_model)
        finally:
            if was_wrapped:
                self.wrap_model()
        if masks:
            warnings.warn("AMCPruner: the model already has masks; the speedup resource model is measured on the "
                          "unmasked model", stacklevel=3)
        try:
            return probe_speedup_resource(clean, self.dummy_input, units, self.target)
        except Exception as exc:  # speedup does not support every model: degrade, loudly
            warnings.warn(f"AMCPruner: measuring {self.target} after speedup failed ({exc!r}); counting the masked "
                          f"model instead (resource_mode='masked')", stacklevel=3)
            return None

    def _run(self) -> None:
        env = self.make_env()
        agent = DDPGAgent(AMCEnv.N_STATES, len(env.layers), self.ddpg_params, self.seed)
        weights = self.snapshot()
        for episode in range(self.total_episode):
            state, done, transitions = env.reset(), False, []
            while not done:
                action = agent.select_action(state, episode)
                next_state, _, done = env.step(action)
                transitions.append((state, action, next_state, done))
                state = next_state
            allocation = {name: ratio for layer, ratio in zip(env.layers, env.ratios) for name in layer.members}
            masks = self.masks_for(allocation, keep_pruned=False)
            self.update_masks(masks)
            score = self.evaluate_score()
            agent.observe_episode(transitions, score)
            if episode >= self.ddpg_params.warmup:
                for _ in range(len(env.layers)):
                    agent.update()
            remaining = env.remaining_cost(env.ratios)
            self.history.append({"episode": episode, "score": score, "sparse_ratios": allocation,
                                 "remaining": remaining, "total": env.total_cost})
            self.record(episode, score, masks, allocation, weights=weights)
        self.apply_best()
