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

import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

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


def weight_head_scores(q: nn.Linear, k: nn.Linear, v: nn.Linear, head_hidden_dim: int, p: int) -> Tensor:
    """Per-head mean of the q/k/v weight-row Lp norms."""
    norms = [torch.linalg.vector_norm(m.weight.detach().float().reshape(-1, head_hidden_dim * m.weight.shape[1]),
                                      ord=p, dim=1) for m in (q, k, v)]
    return sum(norms) / 3.0


def select_heads(scores: Dict[int, Tensor], ratios: Dict[int, float], global_sort: bool,
                 already_pruned: Optional[Dict[int, Tensor]] = None) -> Dict[int, Tensor]:
    """Boolean "keep" vector per group: the lowest-scoring heads are pruned.

    Already-pruned heads score ``-inf`` so they stay pruned; ties go to the lower head index.
    """
    scores = {g: s.detach().float().clone() for g, s in scores.items()}
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
