"""TransformerHeadPruner: prune whole attention heads (Michel et al. 2019, "Are Sixteen Heads
Really Better than One?").

An attention layer is four Linear modules ``[q, k, v, o]``.  Head ``h`` owns rows
``h*d:(h+1)*d`` of the q/k/v weights (and biases) and the same columns of the output projection's
weight, ``d = head_hidden_dim``.  Pruning a head masks all four together, so speedup can remove it.

Head importance (``ranking_criterion``):

* ``l1_weight`` / ``l2_weight``: the mean over q, k and v of the head's weight-row norm;
* ``l1_activation`` / ``l2_activation``: the norm of the head's slice of the attention output
  (the input of ``o``) accumulated over the evaluator's forward passes;
* ``taylorfo``: ``sum |a * dL/da|`` over the head's slice ``a`` of the attention output, over the
  evaluator's training steps (first-order Taylor estimate of the loss change when the head goes).

Heads with the lowest scores are pruned: ``floor(sparse_ratio * n_heads)`` per layer, or, with
``global_sort=True``, ``floor(sparse_ratio * all heads)`` over all layers together.  With
``num_iterations > 1`` the ratio grows linearly (``sparse_ratio * i / num_iterations``) and the
evaluator trains ``epochs_per_iteration`` epochs between iterations; pruned heads stay pruned.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from nniray.compression.base.compressor import Pruner

from ._advanced.masks import num_to_prune

__all__ = ["RANKING_CRITERIA", "find_attention_groups", "weight_head_scores", "head_masks_to_module_masks",
           "select_heads", "HeadActivationCollector", "TransformerHeadPruner"]

RANKING_CRITERIA = ("l1_weight", "l2_weight", "l1_activation", "l2_activation", "taylorfo")

# (q, k, v) sibling names and the output projection name relative to the same parent, for the
# layouts of common implementations (HF BERT/RoBERTa, BART/OPT/LLaMA, T5, DistilBERT).
_QKV_PATTERNS: List[Tuple[Tuple[str, str, str], Tuple[str, ...]]] = [
    (("query", "key", "value"), ("output.dense", "../output.dense", "out", "out_proj", "o")),
    (("q_proj", "k_proj", "v_proj"), ("out_proj", "o_proj")),
    (("q_lin", "k_lin", "v_lin"), ("out_lin",)),
    (("q", "k", "v"), ("o", "out")),
]


def _join(parent: str, rel: str) -> str:
    while rel.startswith("../"):
        parent = parent.rsplit(".", 1)[0] if "." in parent else ""
        rel = rel[3:]
    return f"{parent}.{rel}" if parent else rel


def find_attention_groups(model: nn.Module) -> List[List[str]]:
    """Find ``[q, k, v, o]`` name groups of separate Linear modules by naming convention.

    This replaces NNI's experimental ``torch.jit.trace`` grouping with something predictable;
    models with other names must pass ``attention_name_groups``.  ``nn.MultiheadAttention`` (one
    fused in-projection) is not supported, like in NNI.
    """
    modules = dict(model.named_modules())
    linears = {n for n, m in modules.items() if isinstance(m, nn.Linear)}
    groups = []
    for name in sorted(linears):
        parent, _, leaf = name.rpartition(".")
        for (q, k, v), outs in _QKV_PATTERNS:
            if leaf != q:
                continue
            qkv = [_join(parent, x) for x in (q, k, v)]
            if not all(x in linears for x in qkv):
                continue
            for out in outs:
                o = _join(parent, out)
                if o in linears and o not in qkv:
                    groups.append(qkv + [o])
                    break
    return groups


def weight_head_scores(q: Tensor, k: Tensor, v: Tensor, head_hidden_dim: int, p: int) -> Tensor:
    """Per-head mean of the Lp norms of the heads' rows of the q/k/v weights."""
    norms = [torch.linalg.vector_norm(w.detach().float().reshape(-1, head_hidden_dim * w.shape[1]), ord=p, dim=1)
             for w in (q, k, v)]
    return sum(norms) / 3.0


def select_heads(scores: Dict[int, Tensor], ratios: Dict[int, float], global_sort: bool,
                 already_pruned: Optional[Dict[int, Tensor]] = None) -> Dict[int, Tensor]:
    """Boolean "keep" vector per group: the lowest-scoring heads are pruned.

    Already-pruned heads score ``-inf`` so they stay pruned; ties go to the lower head index.
    """
    scores = {g: s.detach().float().cpu().clone() for g, s in scores.items()}
    if already_pruned:
        for g, keep in already_pruned.items():
            scores[g][~keep] = -float("inf")
    keep = {g: torch.ones(len(s), dtype=torch.bool) for g, s in scores.items()}
    if global_sort:
        ratio = next(iter(ratios.values()))
        flat = torch.cat([scores[g] for g in sorted(scores)])
        owners = [(g, h) for g in sorted(scores) for h in range(len(scores[g]))]
        order = torch.sort(flat, stable=True).indices[:num_to_prune(ratio, len(flat))]
        for i in order.tolist():
            g, h = owners[i]
            keep[g][h] = False
    else:
        for g, s in scores.items():
            order = torch.sort(s, stable=True).indices[:num_to_prune(ratios[g], len(s))]
            keep[g][order] = False
    return keep


def head_masks_to_module_masks(group: Sequence[str], modules: Dict[str, nn.Module], keep: Tensor,
                               head_hidden_dim: int) -> Dict[str, Dict[str, Tensor]]:
    """``{module: {target: mask}}`` for one group: q/k/v rows and o columns of pruned heads."""
    row_keep = keep.float().repeat_interleave(head_hidden_dim)
    out: Dict[str, Dict[str, Tensor]] = {}
    for name in group[:3]:
        m = modules[name]
        out[name] = {"weight": row_keep[:, None].expand_as(m.weight).clone().to(m.weight.device)}
        if m.bias is not None:
            out[name]["bias"] = row_keep.clone().to(m.bias.device)
    o = modules[group[3]]
    out[group[3]] = {"weight": row_keep[None, :].expand_as(o.weight).clone().to(o.weight.device)}
    return out


class HeadActivationCollector:
    """Forward (and for taylorfo, backward) hooks on each output projection's input.

    The input of ``o`` is the concatenation of the heads' attention outputs, so its last axis is
    split into ``n_heads`` slices of ``head_hidden_dim``.
    """

    def __init__(self, criterion: str, head_hidden_dim: int):
        self.criterion = criterion
        self.d = head_hidden_dim
        self.scores: Dict[int, Tensor] = {}
        self._handles = []

    def _per_head(self, x: Tensor) -> Tensor:
        return x.detach().float().reshape(-1, x.shape[-1] // self.d, self.d)

    def _add(self, g: int, value: Tensor) -> None:
        self.scores[g] = self.scores[g] + value if g in self.scores else value

    def attach(self, o_modules: Dict[int, nn.Module]) -> None:
        for g, m in o_modules.items():
            self._handles.append(m.register_forward_pre_hook(lambda mod, args, g=g: self._forward(g, args[0])))

    def _forward(self, g: int, x: Tensor) -> None:
        if self.criterion in ("l1_activation", "l2_activation"):
            p = 1 if self.criterion == "l1_activation" else 2
            per_head = self._per_head(x)
            if p == 1:
                self._add(g, per_head.abs().sum(dim=(0, 2)))
            else:
                # accumulate squares; the norm is taken in result()
                self._add(g, per_head.pow(2).sum(dim=(0, 2)))
        elif self.criterion == "taylorfo" and x.requires_grad:
            x.register_hook(lambda grad, x=x.detach(), g=g: self._add(
                g, (self._per_head(x) * self._per_head(grad)).abs().sum(dim=(0, 2))))

    def result(self) -> Dict[int, Tensor]:
        if self.criterion == "l2_activation":
            return {g: s.sqrt() for g, s in self.scores.items()}
        return dict(self.scores)

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


# --------------------------------------------------------------------------------------------
# the pruner
# --------------------------------------------------------------------------------------------

class TransformerHeadPruner(Pruner):
    """Attention-head pruning in the NNI 3.0 interface.

    Parameters
    ----------
    model, config_list
        The config selects the q/k/v/o Linear modules with a ``sparse_ratio`` (the share of heads
        to prune); the four modules of a layer need the same ratio, e.g. the guide's BERT example
        ``[{'sparse_ratio': .5, 'op_names': first_6_layers}, {'sparse_ratio': .25, 'op_names': last_6}]``.
    evaluator
        Needed for ``l1_activation``/``l2_activation`` (``evaluating_func``: its forward passes are
        observed), ``taylorfo`` (training parts) and ``num_iterations > 1`` (training parts).
    head_hidden_dim
        Width of one head (64 for BERT-base); must divide the q/k/v output width.
    attention_name_groups
        ``[[q, k, v, o], ...]`` module names per attention layer (q/k/v in any order, output
        last).  None: found by naming convention (see :func:`find_attention_groups`).
    dummy_input
        Accepted for v1 compatibility; grouping is by name, not by tracing.
    ranking_criterion
        ``'l1_weight'`` (default), ``'l2_weight'``, ``'l1_activation'``, ``'l2_activation'``, ``'taylorfo'``.
    global_sort
        Rank all heads of all layers together (all configs must share one ``sparse_ratio``).
    num_iterations, epochs_per_iteration
        Iterative pruning: the ratio grows linearly over ``num_iterations`` and the evaluator
        trains ``epochs_per_iteration`` epochs in between.
    training_steps
        Steps of gradient collection for ``taylorfo`` (default: one epoch).
    """

    _default_op_types = ("Linear",)
    _default_granularity = "out_channel"

    def __init__(self, model: nn.Module, config_list, evaluator=None, head_hidden_dim: Optional[int] = None,
                 attention_name_groups: Optional[Sequence[Sequence[str]]] = None, dummy_input=None,
                 ranking_criterion: str = "l1_weight", global_sort: bool = False, num_iterations: int = 1,
                 epochs_per_iteration: int = 1, training_steps: Optional[int] = None, existed_wrappers=None):
        if not isinstance(head_hidden_dim, int) or isinstance(head_hidden_dim, bool) or head_hidden_dim < 1:
            raise ValueError(f"TransformerHeadPruner: head_hidden_dim must be a positive int (e.g. 64 for BERT-base), "
                             f"got {head_hidden_dim!r}")
        if ranking_criterion not in RANKING_CRITERIA:
            raise ValueError(f"TransformerHeadPruner: ranking_criterion must be one of {RANKING_CRITERIA}, "
                             f"got {ranking_criterion!r}")
        for name, value in (("num_iterations", num_iterations), ("epochs_per_iteration", epochs_per_iteration)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TransformerHeadPruner: {name} must be a positive int, got {value!r}")
        self.head_hidden_dim = head_hidden_dim
        self.ranking_criterion = ranking_criterion
        self.global_sort = bool(global_sort)
        self.num_iterations = num_iterations
        self.epochs_per_iteration = epochs_per_iteration
        self.training_steps = training_steps
        self.dummy_input = dummy_input
        parts = []
        if ranking_criterion in ("l1_activation", "l2_activation"):
            parts.append("evaluating_func")
        if ranking_criterion == "taylorfo" or num_iterations > 1:
            parts += ["training_func", "optimizers", "training_step"]
        self._required_evaluator_parts = tuple(parts)
        super().__init__(model, config_list, evaluator, existed_wrappers=existed_wrappers)
        modules = dict(model.named_modules())
        if attention_name_groups is None:
            attention_name_groups = [g for g in find_attention_groups(model) if all(n in self._target_spaces for n in g)]
            if not attention_name_groups:
                raise ValueError("TransformerHeadPruner found no [q, k, v, o] group among the selected modules by "
                                 "name; pass attention_name_groups=[[q, k, v, o], ...]")
        self.attention_name_groups = [list(g) for g in attention_name_groups]
        self._modules = modules
        self.validate_weight_groups()
        self.head_keep: Dict[int, Tensor] = {}

    # ---- validation (v1's validate_weight_groups) -------------------------------------------------
    def _ratio(self, name: str) -> float:
        ts = self._target_spaces.get(name, {}).get("weight")
        if ts is None or ts.sparse_ratio is None:
            raise ValueError(f"TransformerHeadPruner: attention module {name!r} has no sparse_ratio in config_list; "
                             f"select all four q/k/v/o modules of every attention layer")
        return float(ts.sparse_ratio)

    def validate_weight_groups(self) -> None:
        grouped = set()
        ratios = {}
        for gi, group in enumerate(self.attention_name_groups):
            where = f"attention_name_groups[{gi}]"
            if len(group) != 4:
                raise ValueError(f"{where} must list 4 module names [q, k, v, o], got {group}")
            for name in group:
                if name not in self._modules or not isinstance(self._modules[name], nn.Linear):
                    raise ValueError(f"{where}: {name!r} is not an nn.Linear of the model")
            q, k, v, o = (self._modules[n] for n in group)
            if not (q.weight.shape == k.weight.shape == v.weight.shape):
                raise ValueError(f"{where}: q/k/v weights must have the same shape, got {tuple(q.weight.shape)}, "
                                 f"{tuple(k.weight.shape)}, {tuple(v.weight.shape)}")
            if o.in_features != q.out_features:
                raise ValueError(f"{where}: the output projection {group[3]!r} takes {o.in_features} features but the "
                                 f"heads produce {q.out_features}; is the output module last?")
            if q.out_features % self.head_hidden_dim:
                raise ValueError(f"{where}: head_hidden_dim {self.head_hidden_dim} does not divide the projection "
                                 f"width {q.out_features}")
            group_ratios = {self._ratio(n) for n in group}
            if len(group_ratios) != 1:
                raise ValueError(f"{where}: the four weights of one attention layer need one sparse_ratio, got "
                                 f"{sorted(group_ratios)}")
            ratios[gi] = group_ratios.pop()
            grouped.update(group)
        stray = [n for n in self._target_spaces if n not in grouped]
        if stray:
            raise ValueError(f"TransformerHeadPruner: config_list selects {stray}, which are in no attention group; "
                             f"narrow op_names or add their group to attention_name_groups")
        if self.global_sort and len(set(ratios.values())) > 1:
            raise ValueError(f"TransformerHeadPruner: global_sort needs one sparse_ratio for all layers, got "
                             f"{sorted(set(ratios.values()))}")
        self.group_ratios = ratios

    # ---- scores ---------------------------------------------------------------------------------
    def head_scores(self) -> Dict[int, Tensor]:
        """Importance of every head of every group under ``ranking_criterion``."""
        if self.ranking_criterion in ("l1_weight", "l2_weight"):
            p = 1 if self.ranking_criterion == "l1_weight" else 2
            out = {}
            for gi, group in enumerate(self.attention_name_groups):
                q, k, v = (self._target_spaces[n]["weight"].target for n in group[:3])
                out[gi] = weight_head_scores(q, k, v, head_hidden_dim=self.head_hidden_dim, p=p)
            return out
        collector = HeadActivationCollector(self.ranking_criterion, self.head_hidden_dim)
        collector.attach({gi: self._modules[g[3]] for gi, g in enumerate(self.attention_name_groups)})
        already = getattr(self.evaluator, "model", None) is self.bound_model
        if not already:
            self.evaluator.bind_model(self.bound_model)
        try:
            if self.ranking_criterion == "taylorfo":
                if self.training_steps is not None:
                    self.evaluator.train(max_steps=self.training_steps)
                else:
                    self.evaluator.train(max_epochs=1)
            else:
                self.evaluator.evaluate()
        finally:
            collector.detach()
            if not already:
                self.evaluator.unbind_model()
        scores = collector.result()
        missing = [self.attention_name_groups[gi][3] for gi in range(len(self.attention_name_groups))
                   if gi not in scores]
        if missing:
            raise RuntimeError(f"TransformerHeadPruner: no activation reached {missing} while ranking heads by "
                               f"{self.ranking_criterion}; check the evaluator runs the model")
        return scores

    # ---- compress -------------------------------------------------------------------------------
    def _apply_keep(self, keep: Dict[int, Tensor]) -> None:
        masks = {}
        for gi, group in enumerate(self.attention_name_groups):
            for module_name, targets in head_masks_to_module_masks(group, self._modules, keep[gi],
                                                                   self.head_hidden_dim).items():
                own = self._target_spaces[module_name]
                masks[module_name] = {t: m for t, m in targets.items() if t in own}
        self.update_masks(masks)
        self.head_keep = {gi: k.clone() for gi, k in keep.items()}

    def _single_compress(self, max_steps, max_epochs):
        if max_steps is not None or max_epochs is not None:
            raise ValueError("TransformerHeadPruner.compress() takes no max_steps/max_epochs; use num_iterations "
                             "and epochs_per_iteration")
        keep = None
        for it in range(1, self.num_iterations + 1):
            ratios = {gi: r * it / self.num_iterations for gi, r in self.group_ratios.items()}
            keep = select_heads(self.head_scores(), ratios, self.global_sort, already_pruned=keep)
            self._apply_keep(keep)
            if it < self.num_iterations:
                already = getattr(self.evaluator, "model", None) is self.bound_model
                if not already:
                    self.evaluator.bind_model(self.bound_model)
                try:
                    self.evaluator.train(max_epochs=self.epochs_per_iteration)
                finally:
                    if not already:
                        self.evaluator.unbind_model()
        return self.bound_model, self.get_masks()
