"""Hyper-modules: ``AutoActivation`` and the NAS-Bench-101/201 cells."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import torch
from torch import nn

from nniray.mutable import Categorical
from nniray.mutable.frozen import current_sample

from ...fixed import fixed_value
from .base import MutableModule
from .choice import InputChoice, LayerChoice, _label

__all__ = ["AutoActivation", "NasBench201Cell", "NasBench101Cell", "InvalidArchitecture"]


class InvalidArchitecture(ValueError):
    """A sampled architecture that violates a constraint of the space; the trial fails."""


# -- AutoActivation ("Searching for Activation Functions", arXiv 1710.05941) -----------------
class _Unary(nn.Module):
    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.name, self.fn = name, fn

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


class _Binary(nn.Module):
    def __init__(self, name: str, fn: Callable, with_beta: bool = False):
        super().__init__()
        self.name, self.fn = name, fn
        # NOTE as NNI: beta is one scalar, not per channel
        self.beta = nn.Parameter(torch.tensor(0.5)) if with_beta else None

    def forward(self, x):
        a, b = x
        return self.fn(a, b, self.beta) if self.beta is not None else self.fn(a, b)

    def extra_repr(self) -> str:
        return self.name


def _unary_ops() -> "OrderedDict[str, nn.Module]":
    fns = {
        "identity": lambda x: x, "negative": lambda x: -x, "abs": torch.abs, "square": torch.square,
        "pow3": lambda x: torch.pow(x, 3), "sqrt": lambda x: torch.sqrt(torch.abs(x) + 1e-7),
        "mul_beta": lambda x: 0.5 * x, "add_beta": lambda x: x + 0.5,
        "log_abs": lambda x: torch.log(torch.abs(x) + 1e-7), "exp": lambda x: torch.exp(torch.clamp(x, max=20)),
        "sin": torch.sin, "cos": torch.cos, "sinh": lambda x: torch.sinh(torch.clamp(x, -20, 20)),
        "cosh": lambda x: torch.cosh(torch.clamp(x, -20, 20)), "tanh": torch.tanh, "asinh": torch.asinh,
        "atan": torch.atan, "sinc": torch.sinc, "max0": lambda x: torch.clamp(x, min=0),
        "min0": lambda x: torch.clamp(x, max=0), "sigmoid": torch.sigmoid,
        "logexp": lambda x: torch.log1p(torch.exp(torch.clamp(x, max=20))),
        "exp_square": lambda x: torch.exp(-torch.square(x)), "erf": torch.erf,
    }
    return OrderedDict((k, _Unary(k, f)) for k, f in fns.items())


def _binary_ops() -> "OrderedDict[str, nn.Module]":
    return OrderedDict([
        ("add", _Binary("add", lambda a, b: a + b)), ("mul", _Binary("mul", lambda a, b: a * b)),
        ("minus", _Binary("minus", lambda a, b: a - b)), ("divide", _Binary("divide", lambda a, b: a / (b + 1e-7))),
        ("max", _Binary("max", torch.maximum)), ("min", _Binary("min", torch.minimum)),
        ("sigmoid_mul", _Binary("sigmoid_mul", lambda a, b: torch.sigmoid(a) * b)),
        ("exp_beta_square", _Binary("exp_beta_square", lambda a, b, beta: torch.exp(-beta * torch.square(a - b)), True)),
        ("exp_beta_abs", _Binary("exp_beta_abs", lambda a, b, beta: torch.exp(-beta * torch.abs(a - b)), True)),
        ("beta_mix", _Binary("beta_mix", lambda a, b, beta: beta * a + (1 - beta) * b, True)),
    ])


class AutoActivation(MutableModule):
    """A searchable activation: ``unit_num`` core units, each ``binary(unary(a), unary(x))``
    where ``a`` is x for the first unit and the previous unit's output afterwards.  Labels:
    ``{label}/unary_{j}`` and ``{label}/binary_{i}``."""

    def __init__(self, unit_num: int = 1, label: str | None = None) -> None:
        super().__init__()
        self._label = _label(label)
        if not isinstance(unit_num, int) or unit_num < 1:
            raise ValueError(f"AutoActivation {self._label!r}: unit_num must be a positive int, got {unit_num!r}")
        self.unit_num = unit_num
        self.unaries = nn.ModuleList([LayerChoice(_unary_ops(), label=f"{self._label}/unary_{j}")
                                      for j in range(unit_num + 1)])
        self.binaries = nn.ModuleList([LayerChoice(_binary_ops(), label=f"{self._label}/binary_{i}")
                                       for i in range(unit_num)])

    @property
    def label(self) -> str:
        return self._label

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.binaries[0]([self.unaries[0](x), self.unaries[1](x)])
        for i in range(1, self.unit_num):
            out = self.binaries[i]([self.unaries[i + 1](out), self.unaries[i + 1](x)])
        return out


# -- NAS-Bench-201 ---------------------------------------------------------------------------
class NasBench201Cell(MutableModule):
    """The NAS-Bench-201 cell: ``num_tensors`` nodes, every edge ``i -> j`` (i < j) a choice among
    ``op_candidates`` (callables ``(in_features, out_features) -> module``, or a dict of them),
    node ``j`` the sum of its incoming edges.  Edge labels ``{label}__{j}_{i}``."""

    def __init__(self, op_candidates: Any, in_features: int, out_features: int, num_tensors: int = 4,
                 label: str | None = None) -> None:
        super().__init__()
        self._label = _label(label)
        if isinstance(op_candidates, dict):
            items = list(op_candidates.items())
        elif isinstance(op_candidates, (list, tuple)):
            items = list(enumerate(op_candidates))
        else:
            raise TypeError(f"NasBench201Cell {self._label!r}: op_candidates must be a list or dict of callables "
                            f"(in_features, out_features) -> module")
        if not items:
            raise ValueError(f"NasBench201Cell {self._label!r}: op_candidates are empty")
        self.in_features, self.out_features, self.num_tensors = in_features, out_features, num_tensors
        self.layers = nn.ModuleList()
        for j in range(1, num_tensors):
            row = nn.ModuleList()
            for i in range(j):
                inp = in_features if i == 0 else out_features
                cands = OrderedDict((str(k), fn(inp, out_features)) for k, fn in items)
                row.append(LayerChoice(cands, label=f"{self._label}__{j}_{i}"))
            self.layers.append(row)

    @property
    def label(self) -> str:
        return self._label

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        tensors = [inputs]
        for row in self.layers:
            tensors.append(sum(layer(t) for layer, t in zip(row, tensors)))
        return tensors[-1]


# -- NAS-Bench-101 ---------------------------------------------------------------------------
class _NB101Fixed(nn.Module):
    """A concrete NAS-Bench-101 cell: ``ops[i]`` per hidden vertex, ``inputs[i]`` its predecessors."""

    def __init__(self, ops: list[nn.Module], inputs: list[list[int]], in_features: int, out_features: int,
                 projection: Callable[[int, int], nn.Module]) -> None:
        super().__init__()
        self.num_nodes = len(ops) + 2
        self.ops = nn.ModuleList(ops)
        self.preds = inputs  # inputs[k] = predecessors of vertex k+1 (vertex 0 = cell input)
        self.proj = nn.ModuleList([projection(in_features, out_features) for _ in range(self.num_nodes)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for v in range(1, self.num_nodes):
            preds = self.preds[v - 1]
            parts = [self.proj[v](x) if p == 0 else states[p] for p in preds]
            h = sum(parts) if parts else None
            if v == self.num_nodes - 1:
                return h
            states.append(self.ops[v - 1](h) if h is not None else torch.zeros_like(self.proj[v](x)))
        raise AssertionError("unreachable")


def _nb101_check(num_nodes: int, inputs: list[list[int]], max_num_edges: int, label: str) -> None:
    edges = sum(len(p) for p in inputs)
    if edges > max_num_edges:
        raise InvalidArchitecture(f"NasBench101Cell {label!r}: {edges} edges exceed max_num_edges={max_num_edges}")
    # the output must be reachable from the input
    reach = {0}
    for v in range(1, num_nodes):
        if any(p in reach for p in inputs[v - 1]):
            reach.add(v)
    if num_nodes - 1 not in reach:
        raise InvalidArchitecture(f"NasBench101Cell {label!r}: the output vertex is not connected to the input")


class NasBench101Cell(MutableModule):
    """The NAS-Bench-101 cell: up to ``max_num_nodes`` vertices (input, hidden ops, output) and
    at most ``max_num_edges`` edges.  Decisions: ``{label}/num_nodes``, ``{label}/op{i}`` (for
    hidden vertex i, among ``op_candidates``: callables ``num_features -> module``), and
    ``{label}/input{i}`` (the predecessors of vertex i, any subset).  Vertices add their inputs
    (the cell input through ``projection(in_features, out_features)``); an architecture
    breaking the edge limit or disconnecting the output raises :class:`InvalidArchitecture`.
    NAS-Bench-101 concatenates the vertices into the output with split channels; this cell sums
    them (same search space, simpler channel bookkeeping).
    """

    def __new__(cls, op_candidates: Any = None, in_features: int = 0, out_features: int = 0,
                projection: Any = None, max_num_nodes: int = 7, max_num_edges: int = 9, label: str | None = None,
                **kwargs: Any):
        if op_candidates is None:
            return super().__new__(cls)
        label = _label(label)
        if current_sample() is not None:
            names, fns = _nb101_ops(op_candidates, label)
            n = fixed_value(Categorical(list(range(2, max_num_nodes + 1)), label=f"{label}/num_nodes"))
            ops, inputs = [], []
            for i in range(1, max_num_nodes - 1):
                op = fixed_value(Categorical(names, label=f"{label}/op{i}"))
                if i < n - 1:
                    ops.append(fns[names.index(op)](out_features))
            chosen = {i: list(InputChoice(i, None, label=f"{label}/input{i}").chosen) for i in range(1, max_num_nodes)}
            # vertices 0..n-1: hidden ones 1..n-2 use op{i}/input{i}, the output n-1 uses input{n-1}
            inputs = [chosen[v] for v in range(1, n)]
            _nb101_check(n, inputs, max_num_edges, label)
            return _NB101Fixed(ops, inputs, in_features, out_features, projection)
        self = super().__new__(cls)
        object.__setattr__(self, "_pending_label", label)
        return self

    def __init__(self, op_candidates: Any, in_features: int, out_features: int, projection: Any,
                 max_num_nodes: int = 7, max_num_edges: int = 9, label: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        self._label = self.__dict__.pop("_pending_label", None) or _label(label)
        names, fns = _nb101_ops(op_candidates, self._label)
        self.max_num_nodes, self.max_num_edges = max_num_nodes, max_num_edges
        self._mutables = [Categorical(list(range(2, max_num_nodes + 1)), label=f"{self._label}/num_nodes")]
        self._mutables += [Categorical(names, label=f"{self._label}/op{i}") for i in range(1, max_num_nodes - 1)]
        self.choices = nn.ModuleList([InputChoice(i, None, label=f"{self._label}/input{i}")
                                      for i in range(1, max_num_nodes)])
        # the default architecture: a chain input -> op1 -> ... -> output
        self._default = _NB101Fixed([fns[0](out_features) for _ in range(max_num_nodes - 2)],
                                    [[i - 1] for i in range(1, max_num_nodes)], in_features, out_features, projection)

    @property
    def label(self) -> str:
        return self._label

    def own_mutables(self) -> list:
        return list(self._mutables)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._default(x)


def _nb101_ops(op_candidates: Any, label: str) -> tuple[list, list]:
    if isinstance(op_candidates, dict):
        return [str(k) for k in op_candidates], list(op_candidates.values())
    if isinstance(op_candidates, (list, tuple)) and op_candidates:
        return list(range(len(op_candidates))), list(op_candidates)
    raise TypeError(f"NasBench101Cell {label!r}: op_candidates must be a non-empty list or dict of callables "
                    f"num_features -> module")
