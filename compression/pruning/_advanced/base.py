"""``AdvancedPruner``: what the search-based and iterative pruners share on top of C1's ``Pruner``.

* Masks come from C1's machinery (``generate_masks``: sparse goals, global/dependency groups,
  ``max_sparse_ratio``, bias alignment); this class only supplies the metric of a *base
  algorithm* (``level``, ``l1``, ``l2``, ``fpgm``) and, per call, a per-layer allocation of
  sparse ratios.
* Optionally already-pruned blocks score ``-inf`` so that iterative pruning only ever adds to the
  pruned set.
* The evaluator is bound around the work, scores are read from ``evaluate()`` (a float or
  ``(default, dict)``), and weights can be snapshot and restored (candidate fine-tuning, weight
  rewinding) without touching the masks.
* ``get_best_result()`` returns NNI v2's 5-tuple ``(task_id, model, masks, score, config_list)``.
"""
from __future__ import annotations

import copy
import logging
from contextlib import contextmanager
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from nniray.compression.base.compressor import Masks, Pruner
from nniray.compression.base.sparsity import block_vectors, reduce_blocks

_logger = logging.getLogger(__name__)

__all__ = ["AdvancedPruner", "BASE_ALGORITHMS", "score_of", "allocation_config_list"]

BASE_ALGORITHMS = ("level", "l1", "l2", "fpgm")


def score_of(metric: Any) -> Optional[float]:
    """The float of an ``evaluate()`` result (``float`` or ``(default, dict)``)."""
    if metric is None:
        return None
    if isinstance(metric, tuple):
        metric = metric[0]
    if isinstance(metric, dict):
        metric = metric["default"]
    return float(metric)


def allocation_config_list(allocation: Dict[str, float]) -> List[Dict[str, Any]]:
    """A 3.0 config_list that reproduces a per-layer allocation."""
    return [{"op_names": [name], "sparse_ratio": float(ratio)} for name, ratio in allocation.items()]


def base_metric(value: Tensor, sizes: Sequence[int], algo: str) -> Tensor:
    """Per-block importance of ``value`` for a base algorithm (higher = keep)."""
    value = value.detach().float()
    if algo == "level" or algo == "l1":
        return reduce_blocks(value.abs(), sizes, "sum")
    if algo == "l2":
        return reduce_blocks(value.pow(2), sizes, "sum").sqrt()
    if algo == "fpgm":
        vectors = block_vectors(value, sizes)
        dist = torch.cdist(vectors[None], vectors[None])[0].sum(dim=1)
        shape = reduce_blocks(value, sizes, "sum").shape
        return dist.reshape(shape)
    raise ValueError(f"pruning_algorithm must be one of {BASE_ALGORITHMS}, got {algo!r}")


class AdvancedPruner(Pruner):
    """Shared base; subclasses implement ``_run()`` (the search) and call the helpers below."""

    _default_op_types: Optional[Sequence[str]] = ("Conv2d", "Linear")
    _one_shot = False

    def __init__(self, model: torch.nn.Module, config_list: List[Dict[str, Any]], evaluator: Any = None,
                 pruning_algorithm: str = "l1", **kwargs: Any):
        if pruning_algorithm not in BASE_ALGORITHMS:
            raise ValueError(f"{type(self).__name__}: pruning_algorithm must be one of {BASE_ALGORITHMS}, "
                             f"got {pruning_algorithm!r}")
        self.pruning_algorithm = pruning_algorithm
        # level prunes single weights; the norm/FPGM algorithms prune output channels
        self._default_granularity = "element" if pruning_algorithm == "level" else "out_channel"
        self._keep_pruned = False
        self._metric_override: Dict[str, Tensor] = {}
        self._best: Optional[Tuple[Any, Masks, Optional[float], Dict[str, float], Dict[str, Tensor]]] = None
        super().__init__(model, config_list, evaluator, **kwargs)
        self._weights = {name: targets["weight"] for name, targets in self._target_spaces.items()
                         if "weight" in targets and targets["weight"].has_sparse_goal}
        if not self._weights:
            raise ValueError(f"{type(self).__name__}: config_list gives no module weight a sparse_ratio; e.g. "
                             f"[{{'op_types': ['Conv2d'], 'sparse_ratio': 0.5}}]")
        for name, ts in self._weights.items():
            if ts.sparse_ratio is None:
                raise ValueError(f"{ts.where}: {type(self).__name__} needs sparse_ratio (sparse_threshold is not "
                                 f"supported by search-based pruners)")
        self._user_ratios = {name: float(ts.sparse_ratio) for name, ts in self._weights.items()}
        self._user_caps = {name: (float(ts.max_sparse_ratio) if ts.max_sparse_ratio is not None else 1.0)
                           for name, ts in self._weights.items()}

    # ---- sizes and ratios ----------------------------------------------------------------------
    def numels(self) -> Dict[str, int]:
        return {name: ts.shape.numel() for name, ts in self._weights.items()}

    def units(self) -> List[List[str]]:
        """Pruning units in model order: the members of one ``dependency_group_id`` form one unit
        (they must prune the same channels), every other target is a unit of its own."""
        units: List[List[str]] = []
        by_group: Dict[Any, List[str]] = {}
        for name, ts in self._weights.items():
            gid = ts.dependency_group_id
            if gid is None:
                units.append([name])
            elif gid in by_group:
                by_group[gid].append(name)
            else:
                by_group[gid] = [name]
                units.append(by_group[gid])
        return units

    def overall_target(self) -> float:
        """The share of the targets' weights the config_list asks to prune in total."""
        n = self.numels()
        return sum(self._user_ratios[k] * n[k] for k in n) / sum(n.values())

    def current_ratios(self) -> Dict[str, float]:
        """Fraction of each target weight that is masked now."""
        out = {}
        for name, ts in self._weights.items():
            mask = ts.mask
            # double precision: the ratio goes back through floor(ratio * n), which float32 can miss by one
            out[name] = 0.0 if mask is None else float(1 - mask.double().mean())
        return out

    def current_sparsity(self) -> float:
        n, r = self.numels(), self.current_ratios()
        return sum(r[k] * n[k] for k in n) / sum(n.values())

    # ---- masks ---------------------------------------------------------------------------------
    def _calculate_metrics(self, targets, block_sizes):
        metrics = {}
        for key, ts in targets.items():
            source = self._metric_override.get(key[0])
            value = ts.target if source is None else source
            metric = base_metric(value, block_sizes[key], self.pruning_algorithm)
            if self._keep_pruned and ts.mask is not None:
                alive = reduce_blocks(ts.mask.float(), block_sizes[key], "sum") > 0
                metric = torch.where(alive, metric, torch.full_like(metric, -float("inf")))
            metrics[key] = metric
        return metrics

    def masks_for(self, allocation: Dict[str, float], keep_pruned: bool = True,
                  metric_source: Optional[Dict[str, Tensor]] = None) -> Masks:
        """Masks that prune each layer of ``allocation`` to its ratio (relative to the whole weight).
        Layers not in ``allocation`` keep their current ratio.  Nothing is applied."""
        saved = {name: dict(ts.setting) for name, ts in self._weights.items()}
        current = self.current_ratios()
        ratios = {name: float(min(1.0, allocation.get(name, current[name]))) for name in self._weights}
        if keep_pruned:
            # never below what is already pruned: iterative pruning only adds
            ratios = {name: max(r, current[name]) for name, r in ratios.items()}
        # members of a dependency group prune the same channels, so they need one ratio: the
        # size-weighted mean of theirs keeps the group's total
        groups: Dict[Any, List[str]] = {}
        for name, ts in self._weights.items():
            if ts.dependency_group_id is not None:
                groups.setdefault(ts.dependency_group_id, []).append(name)
        numel = self.numels()
        for members in groups.values():
            mean = sum(ratios[m] * numel[m] for m in members) / sum(numel[m] for m in members)
            for m in members:
                ratios[m] = mean
        try:
            for name, ts in self._weights.items():
                ts.setting["sparse_ratio"] = ratios[name]
                # the allocation is already the distribution: no group re-distributes it
                ts.setting["global_group_id"] = None
                ts.setting["min_sparse_ratio"] = None
                ts.setting["max_sparse_ratio"] = None
            self._keep_pruned = keep_pruned
            self._metric_override = dict(metric_source or {})
            return self.generate_masks()
        finally:
            self._keep_pruned = False
            self._metric_override = {}
            for name, ts in self._weights.items():
                ts.setting = saved[name]

    def masks_with_goals(self, ratio_fn, keep_pruned: bool = True,
                         metric_source: Optional[Dict[str, Tensor]] = None) -> Masks:
        """Masks with every weight's ``sparse_ratio`` replaced by ``ratio_fn(user_ratio)``; the
        config's groups and bounds still apply (used by schedules such as the lottery ticket's)."""
        saved = {name: dict(ts.setting) for name, ts in self._weights.items()}
        try:
            for name, ts in self._weights.items():
                ts.setting["sparse_ratio"] = float(ratio_fn(self._user_ratios[name]))
            self._keep_pruned = keep_pruned
            self._metric_override = dict(metric_source or {})
            return self.generate_masks()
        finally:
            self._keep_pruned = False
            self._metric_override = {}
            for name, ts in self._weights.items():
                ts.setting = saved[name]

    # ---- evaluator ------------------------------------------------------------------------------
    @contextmanager
    def bound_evaluator(self):
        """Bind the evaluator to the (wrapped) model for the duration of a search."""
        ev = self.evaluator
        if ev is None:
            yield None
            return
        already = getattr(ev, "model", None) is self.bound_model
        if not already:
            ev.bind_model(self.bound_model)
        try:
            yield ev
        finally:
            if not already:
                ev.unbind_model()

    def evaluate_score(self) -> Optional[float]:
        if self.evaluator is None:
            return None
        return score_of(self.evaluator.evaluate())

    def train(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None) -> None:
        if max_steps is None and max_epochs is None:
            return
        self.evaluator.train(max_steps=max_steps, max_epochs=max_epochs)

    # ---- weights -------------------------------------------------------------------------------
    def _mask_keys(self) -> set:
        return {f"{m}.{t}_mask" for m, w in self._wrappers.items() for t in w.target_spaces}

    def snapshot(self) -> Dict[str, Tensor]:
        """Parameters and buffers of the model, without masks."""
        skip = self._mask_keys()
        return {k: v.detach().clone() for k, v in self.bound_model.state_dict().items() if k not in skip}

    def restore(self, snapshot: Dict[str, Tensor]) -> None:
        state = self.bound_model.state_dict()
        with torch.no_grad():
            for k, v in snapshot.items():
                state[k].copy_(v)
        for wrapper in self._wrappers.values():
            if wrapper.is_wrapped:
                wrapper._refresh_params()

    # ---- results -------------------------------------------------------------------------------
    def record(self, task_id: Any, score: Optional[float], masks: Masks, allocation: Dict[str, float],
               weights: Optional[Dict[str, Tensor]] = None, maximize: bool = True, latest: bool = False) -> bool:
        """Keep the best result; True if this one is kept.  Without a score, and on equal scores,
        the latest result wins (later rounds of an iterative pruner are the sparser ones);
        ``latest=True`` always keeps this one."""
        better = (latest or self._best is None or score is None or self._best[2] is None
                  or (score >= self._best[2] if maximize else score <= self._best[2]))
        if better:
            self._best = (task_id, copy.deepcopy(masks), score, dict(allocation),
                          weights if weights is not None else self.snapshot())
        return better

    def reset_masks(self, masks: Masks) -> None:
        """Set every own target's mask to its entry in ``masks``, or to none (unpruned)."""
        full = {m: {t: masks.get(m, {}).get(t) for t in targets} for m, targets in self._target_spaces.items()}
        self.update_masks(full)

    def apply_best(self) -> None:
        if self._best is None:
            return
        _, masks, _, _, weights = self._best
        self.restore(weights)
        self.update_masks(masks)

    def get_best_result(self) -> Optional[Tuple[Any, torch.nn.Module, Masks, Optional[float], List[Dict[str, Any]]]]:
        """``(task_id, model, masks, score, config_list)`` of the best result, or None before
        ``compress()``.  ``model`` is the (wrapped) model, set to the best weights and masks by
        ``compress()``; ``config_list`` reproduces the per-layer sparse ratios found."""
        if self._best is None:
            return None
        task_id, masks, score, allocation, _ = self._best
        return task_id, self.bound_model, copy.deepcopy(masks), score, allocation_config_list(allocation)

    # ---- compress --------------------------------------------------------------------------------
    def compress(self, max_steps: Optional[int] = None, max_epochs: Optional[int] = None):
        if max_steps is not None or max_epochs is not None:
            raise ValueError(f"{type(self).__name__}.compress() takes no max_steps/max_epochs: its training "
                             f"lengths are constructor arguments")
        if not self._is_wrapped:
            self.wrap_model()
        with self.bound_evaluator():
            self._run()
        return self.bound_model, self.get_masks()

    def _run(self) -> None:
        raise NotImplementedError

    def _single_compress(self, max_steps, max_epochs):
        return self.compress(max_steps, max_epochs)
