"""``Repeat`` (a variable-depth stack) and ``Cell`` (a NAS-literature cell)."""
from __future__ import annotations

import copy
import inspect
from typing import Any, Callable

import torch
from torch import nn

from nniray.mutable import Categorical
from nniray.mutable.frozen import current_sample

from ...fixed import fixed_value
from .base import MutableModule
from .choice import InputChoice, LayerChoice, _label

__all__ = ["Repeat", "Cell"]


def _depth_range(depth: Any, label: str) -> tuple[int, int]:
    if isinstance(depth, int):
        lo = hi = depth
    elif isinstance(depth, (tuple, list)) and len(depth) == 2 and all(isinstance(d, int) for d in depth):
        lo, hi = depth
    else:
        raise TypeError(f"Repeat {label!r}: depth must be an int or a (min, max) tuple, got {depth!r}")
    if not 0 <= lo <= hi or hi == 0:
        raise ValueError(f"Repeat {label!r}: depth needs 0 <= min <= max and max >= 1, got {depth!r}")
    return lo, hi


def _takes_index(fn: Callable) -> bool:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    except (TypeError, ValueError):
        return False
    return len(params) >= 1


def _build_blocks(blocks: Any, max_depth: int, label: str) -> list[nn.Module]:
    if isinstance(blocks, nn.Module):
        return [blocks] + [copy.deepcopy(blocks) for _ in range(max_depth - 1)]
    if isinstance(blocks, (list, tuple)):
        if len(blocks) != max_depth:
            raise ValueError(f"Repeat {label!r}: a list of blocks must have max depth ({max_depth}) items, got "
                             f"{len(blocks)}")
        return [b if isinstance(b, nn.Module) else b() for b in blocks]
    if callable(blocks):
        with_index = _takes_index(blocks)
        return [blocks(i) if with_index else blocks() for i in range(max_depth)]
    raise TypeError(f"Repeat {label!r}: blocks must be a module, a callable or a list, got {type(blocks).__name__}")


class Repeat(MutableModule):
    """``blocks`` repeated ``depth`` times (an int, or an inclusive ``(min, max)`` range).

    A callable is called once per position (with the index if it takes one), a module is
    deep-copied, a list is used as is; the chosen depth keeps a prefix of the blocks.  Inside
    ``fixed_arch`` the result is an ``nn.Sequential`` of that prefix.
    """

    def __new__(cls, blocks: Any = None, depth: Any = None, *, label: str | None = None, **kwargs: Any):
        if blocks is None:
            return super().__new__(cls)
        label = _label(label)
        if current_sample() is not None:
            lo, hi = _depth_range(depth, label)
            # every block is built, so automatic labels inside them match the space mode
            built = _build_blocks(blocks, hi, label)
            chosen = hi if lo == hi else fixed_value(Categorical(list(range(lo, hi + 1)), label=label))
            return nn.Sequential(*built[:chosen])
        self = super().__new__(cls)
        object.__setattr__(self, "_pending_label", label)
        return self

    def __init__(self, blocks: Any, depth: Any, *, label: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        self._label = self.__dict__.pop("_pending_label", None) or _label(label)
        self.min_depth, self.max_depth = _depth_range(depth, self._label)
        self.blocks = nn.ModuleList(_build_blocks(blocks, self.max_depth, self._label))

    @property
    def label(self) -> str:
        return self._label

    @property
    def mutable(self) -> Categorical | None:
        if self.min_depth == self.max_depth:
            return None
        return Categorical(list(range(self.min_depth, self.max_depth + 1)), label=self._label)

    def own_mutables(self) -> list:
        return [self.mutable] if self.mutable is not None else []

    def forward(self, x: Any) -> Any:
        depth = self.mutable.default() if self.mutable is not None else self.max_depth
        for block in list(self.blocks)[:depth]:
            x = block(x)
        return x


class Cell(MutableModule):
    """A cell of ``num_nodes`` nodes; each node sums ``num_ops_per_node`` operators, each chosen
    from ``op_candidates`` and applied to one input chosen from the cell's
    ``num_predecessors`` inputs and the previous nodes.  The output concatenates every node
    (``merge_op='all'``) on dim 1.  ``forward`` takes a list of tensors (or one tensor).

    Labels: ``{label}__op_{i}_{k}`` for operators, ``{label}/input_{i}_{k}`` for inputs, so
    cells with the same label share every decision.
    """

    def __init__(self, op_candidates: Any, num_nodes: int, num_ops_per_node: int = 1, num_predecessors: int = 1,
                 merge_op: str = "all", label: str | None = None) -> None:
        super().__init__()
        self._label = _label(label)
        if merge_op != "all":
            raise ValueError(f"Cell {self._label!r}: merge_op supports only 'all', got {merge_op!r}")
        for name, v in (("num_nodes", num_nodes), ("num_ops_per_node", num_ops_per_node),
                        ("num_predecessors", num_predecessors)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"Cell {self._label!r}: {name} must be a positive int, got {v!r}")
        self.num_nodes, self.num_ops_per_node, self.num_predecessors = num_nodes, num_ops_per_node, num_predecessors
        self.merge_op = merge_op
        self.ops = nn.ModuleList()
        self.inputs = nn.ModuleList()
        for i in range(num_nodes):
            ops, inputs = nn.ModuleList(), nn.ModuleList()
            for k in range(num_ops_per_node):
                ops.append(LayerChoice(self._candidates(op_candidates), label=f"{self._label}__op_{i}_{k}"))
                inputs.append(InputChoice(num_predecessors + i, 1, label=f"{self._label}/input_{i}_{k}"))
            self.ops.append(ops)
            self.inputs.append(inputs)

    def _candidates(self, op_candidates: Any) -> Any:
        cands = op_candidates() if callable(op_candidates) and not isinstance(op_candidates, nn.Module) else op_candidates
        if isinstance(cands, dict):
            return type(cands)((k, copy.deepcopy(v)) for k, v in cands.items())
        if isinstance(cands, (list, tuple)):
            return [copy.deepcopy(c) for c in cands]
        raise TypeError(f"Cell {self._label!r}: op_candidates must be a list/dict of modules or a callable returning "
                        f"one, got {type(cands).__name__}")

    @property
    def label(self) -> str:
        return self._label

    def forward(self, x: Any) -> torch.Tensor:
        states = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(states) != self.num_predecessors:
            raise ValueError(f"Cell {self._label!r} expects {self.num_predecessors} input tensor(s), got {len(states)}")
        for ops, inputs in zip(self.ops, self.inputs):
            outs = [op(inp(states)) for op, inp in zip(ops, inputs)]
            states.append(sum(outs))
        return torch.cat(states[self.num_predecessors:], dim=1)
