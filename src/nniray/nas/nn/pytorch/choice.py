"""Inline choices: ``LayerChoice``, ``InputChoice``, ``ValueChoice``, ``ChosenInputs``, ``Placeholder``.

Each is a model-space primitive with a label (automatic when not given; shared label = shared
decision).  Inside ``fixed_arch`` a ``LayerChoice(...)`` *is* the chosen candidate and an
``InputChoice(...)`` a :class:`ChosenInputs`; in space mode they run their default (first)
candidate so the space is a working model.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any, Iterable, Iterator

import torch
from torch import nn

from nniray.mutable import Categorical, CategoricalMultiple, auto_label
from nniray.mutable.frozen import current_sample

from ...fixed import fixed_value
from .base import MutableModule

__all__ = ["LayerChoice", "InputChoice", "ValueChoice", "ChosenInputs", "Placeholder", "ReductionType"]

REDUCTIONS = ("none", "sum", "mean", "concat")
ReductionType = str


def _label(label: str | None) -> str:
    if label is None:
        return auto_label()
    if not isinstance(label, str) or not label:
        raise ValueError(f"label must be a non-empty string, got {label!r}")
    return label


def _named_candidates(candidates: Any, label: str) -> "OrderedDict[Any, nn.Module]":
    if isinstance(candidates, dict):
        items = list(candidates.items())
    elif isinstance(candidates, (list, tuple, nn.ModuleList)):
        items = list(enumerate(candidates))
    else:
        raise TypeError(f"LayerChoice {label!r}: candidates must be a list or an OrderedDict of modules, "
                        f"got {type(candidates).__name__}")
    if not items:
        raise ValueError(f"LayerChoice {label!r}: candidates are empty; give at least one module")
    out: OrderedDict = OrderedDict()
    for name, module in items:
        if not isinstance(module, nn.Module):
            raise TypeError(f"LayerChoice {label!r}: candidate {name!r} is a {type(module).__name__}, not an "
                            f"nn.Module")
        for sub_name, sub in module.named_modules():
            if isinstance(sub, LayerChoice):
                where = f"{name}.{sub_name}" if sub_name else str(name)
                raise ValueError(f"LayerChoice {label!r}: candidate {where!r} is (or contains) LayerChoice "
                                 f"{sub.label!r}; LayerChoice cannot be nested. Flatten the candidates into one "
                                 f"LayerChoice, or use a shared label")
        out[name] = module
    return out


def _find_candidate(names: list, chosen: Any) -> Any:
    for n in names:
        if n == chosen or (isinstance(n, int) and isinstance(chosen, str) and chosen.isdigit() and int(chosen) == n):
            return n
    return None


class LayerChoice(MutableModule):
    """Choose one module of ``candidates`` (a list, or an OrderedDict name → module)."""

    def __new__(cls, candidates: Any = None, *, prior: list[float] | None = None, label: str | None = None,
                **kwargs: Any):
        if candidates is None:  # unpickling / copy.deepcopy
            return super().__new__(cls)
        label = _label(label)
        if current_sample() is not None:
            named = _named_candidates(candidates, label)
            names = list(named)
            chosen = _fixed_choice(label, names)
            module = named[chosen]
            object.__setattr__(module, "_nniray_chosen_name", str(chosen))
            return module
        self = super().__new__(cls)
        object.__setattr__(self, "_pending_label", label)
        return self

    def __init__(self, candidates: Any, *, prior: list[float] | None = None, label: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__()
        self._label = self.__dict__.pop("_pending_label", None) or _label(label)
        named = _named_candidates(candidates, self._label)
        self._names = list(named)
        for name, module in named.items():
            self.add_module(str(name), module)
        self.prior = list(prior) if prior is not None else None
        if self.prior is not None and len(self.prior) != len(self._names):
            raise ValueError(f"LayerChoice {self._label!r}: prior has {len(self.prior)} weights for "
                             f"{len(self._names)} candidates")
        self.mutable  # validates the prior now

    # -- the decision --------------------------------------------------------------------
    @property
    def label(self) -> str:
        return self._label

    @property
    def mutable(self) -> Categorical:
        return Categorical(list(self._names), weights=self.prior, label=self._label)

    def own_mutables(self) -> list:
        return [self.mutable]

    # -- container semantics -------------------------------------------------------------
    @property
    def names(self) -> list:
        return list(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[nn.Module]:
        return (self._modules[str(n)] for n in self._names)

    def _key(self, idx: Any) -> Any:
        if idx in self._names:
            return idx
        if isinstance(idx, int) and not any(isinstance(n, int) for n in self._names) and -len(self) <= idx < len(self):
            return self._names[idx]
        raise KeyError(f"LayerChoice {self._label!r} has no candidate {idx!r}; candidates: {self._names}")

    def __getitem__(self, idx: Any) -> nn.Module:
        return self._modules[str(self._key(idx))]

    def __setitem__(self, idx: Any, module: nn.Module) -> None:
        try:
            key = self._key(idx)
        except KeyError:
            raise KeyError(f"LayerChoice {self._label!r}: cannot add candidate {idx!r}; candidates can be replaced "
                           f"or deleted, not added (existing: {self._names})") from None
        self.add_module(str(key), module)

    def __delitem__(self, idx: Any) -> None:
        key = self._key(idx)
        if len(self._names) == 1:
            raise ValueError(f"LayerChoice {self._label!r}: cannot delete the last candidate")
        pos = self._names.index(key)
        self._names.remove(key)
        del self._modules[str(key)]
        if self.prior is not None:
            del self.prior[pos]
            total = sum(self.prior) or 1.0
            self.prior = [p / total for p in self.prior]

    @property
    def length(self) -> int:
        warnings.warn("LayerChoice.length is deprecated; use len(layer_choice)", DeprecationWarning, stacklevel=2)
        return len(self)

    @property
    def choices(self) -> list:
        warnings.warn("LayerChoice.choices is deprecated; use list(layer_choice)", DeprecationWarning, stacklevel=2)
        return list(self)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        # Space mode runs the default candidate, so the space itself is a working model.
        return self[self._names[0]](*args, **kwargs)

    def extra_repr(self) -> str:
        return f"label={self._label!r}"


def _fixed_choice(label: str, names: list) -> Any:
    sample = current_sample()
    from ...fixed import FixedArchError, mark_used
    mark_used([label])
    if label not in sample:
        raise FixedArchError(f"fixed_arch: the architecture has no choice for label {label!r}; it has: "
                             f"{', '.join(map(repr, sorted(map(str, sample)))) or 'no labels'}")
    chosen = _find_candidate(names, sample[label])
    if chosen is None:
        raise FixedArchError(f"fixed_arch: label {label!r} chose {sample[label]!r}, which is not a candidate; "
                             f"candidates: {names}")
    return chosen


def _reduce(tensors: list, reduction: str) -> Any:
    if reduction == "none":
        return tensors
    if not tensors:
        return None
    if len(tensors) == 1:
        return tensors[0]
    if reduction == "sum":
        return sum(tensors)
    if reduction == "mean":
        return sum(tensors) / len(tensors)
    return torch.cat(tensors, dim=1)


def _check_reduction(reduction: str, label: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"InputChoice {label!r}: reduction must be one of {', '.join(REDUCTIONS)}, got "
                         f"{reduction!r} (custom reductions are not supported)")


class InputChoice(MutableModule):
    """Choose ``n_chosen`` of ``n_candidates`` input tensors (any number when None), reduced
    by ``reduction`` (none / sum / mean / concat on dim 1)."""

    def __new__(cls, n_candidates: int | None = None, n_chosen: int | None = 1, reduction: str = "sum", *,
                prior: list[float] | None = None, label: str | None = None, **kwargs: Any):
        if n_candidates is None:
            return super().__new__(cls)
        label = _label(label)
        if current_sample() is not None:
            _check_reduction(reduction, label)
            m = _input_mutable(n_candidates, n_chosen, prior, label)
            sample = current_sample()
            if isinstance(sample.get(label), int):  # ``{label: 2}`` for one chosen input
                sample = {**sample, label: [sample[label]]}
            from nniray.mutable.frozen import frozen_context
            with frozen_context(sample):
                chosen = fixed_value(m)
            return ChosenInputs(chosen, reduction)
        self = super().__new__(cls)
        object.__setattr__(self, "_pending_label", label)
        return self

    def __init__(self, n_candidates: int, n_chosen: int | None = 1, reduction: str = "sum", *,
                 prior: list[float] | None = None, label: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        self._label = self.__dict__.pop("_pending_label", None) or _label(label)
        _check_reduction(reduction, self._label)
        self.n_candidates, self.n_chosen, self.reduction = n_candidates, n_chosen, reduction
        self.prior = prior
        self.mutable = _input_mutable(n_candidates, n_chosen, prior, self._label)

    @property
    def label(self) -> str:
        return self._label

    def own_mutables(self) -> list:
        return [self.mutable]

    def forward(self, candidate_inputs: list) -> Any:
        chosen = self.mutable.default()
        return _reduce([candidate_inputs[i] for i in chosen], self.reduction)

    def extra_repr(self) -> str:
        return f"n_candidates={self.n_candidates}, n_chosen={self.n_chosen}, reduction={self.reduction!r}, " \
               f"label={self._label!r}"


def _input_mutable(n_candidates: int, n_chosen: int | None, prior: Any, label: str) -> CategoricalMultiple:
    if not isinstance(n_candidates, int) or n_candidates < 1:
        raise ValueError(f"InputChoice {label!r}: n_candidates must be a positive int, got {n_candidates!r}")
    return CategoricalMultiple(list(range(n_candidates)), n_chosen=n_chosen, weights=prior, label=label)


class ChosenInputs(nn.Module):
    """The fixed InputChoice: picks ``chosen`` (an index or a list of them) and reduces."""

    def __init__(self, chosen: int | list[int], reduction: str) -> None:
        super().__init__()
        self.chosen = [chosen] if isinstance(chosen, int) else list(chosen)
        self.reduction = reduction

    def forward(self, candidate_inputs: list) -> Any:
        return _reduce([candidate_inputs[i] for i in self.chosen], self.reduction)

    def extra_repr(self) -> str:
        return f"chosen={self.chosen}, reduction={self.reduction!r}"


class ValueChoice(Categorical):
    """Choose one value of ``candidates``.  Use it as an init argument of any module of
    ``nniray.nas.nn`` (or a ``@basic_unit``), or call it (``self.rate()``) in ``forward``.

    Arithmetic is supported (NNI 3.0 semantics): ``nn.Linear(32, ValueChoice([64, 128]) * 2)``
    builds an expression frozen with the architecture.  Built inside ``fixed_arch`` it is frozen:
    calling it returns the chosen value, and ``int()``/``float()``/``bool()`` work on it.
    """

    def __init__(self, candidates: Iterable[Any], *, prior: list[float] | None = None, label: str | None = None,
                 **kwargs: Any) -> None:
        candidates = list(candidates)
        label = _label(label)
        if not candidates:
            raise ValueError(f"ValueChoice {label!r}: candidates are empty; give at least one value")
        super().__init__(candidates, weights=prior, label=label)
        self.candidates = candidates
        self.prior = prior
        if current_sample() is not None:
            self._nniray_frozen = True
            self._frozen_value = fixed_value(Categorical(candidates, label=label))

    def __call__(self) -> Any:
        if getattr(self, "_nniray_frozen", False):
            return self._frozen_value
        return self.default()

    def __repr__(self) -> str:
        if getattr(self, "_nniray_frozen", False):
            return f"ValueChoice({self.candidates!r}, label={self.label!r}, chosen={self._frozen_value!r})"
        return f"ValueChoice({self.candidates!r}, label={self.label!r})"

    def __bool__(self) -> bool:
        if getattr(self, "_nniray_frozen", False):
            return bool(self._frozen_value)
        return super().__bool__()

    def __int__(self) -> int:
        return int(self())

    def __float__(self) -> float:
        return float(self())

    def __index__(self) -> int:
        return int(self())

    def freeze(self, sample: dict) -> Any:
        if getattr(self, "_nniray_frozen", False) and self.label not in sample:
            return self._frozen_value
        return super().freeze(sample)

    def default(self, memo: dict | None = None) -> Any:
        if getattr(self, "_nniray_frozen", False):
            return self._frozen_value
        return super().default(memo)


class Placeholder(nn.Module):
    """A node that a custom mutator replaces (graph-based engine); ``related_info`` reaches the
    mutator as the node's parameters."""

    def __init__(self, label: str, **related_info: Any) -> None:
        super().__init__()
        self.label = _label(label)
        self.related_info = related_info

    def forward(self, *args: Any) -> Any:
        raise RuntimeError(f"Placeholder {self.label!r} was not replaced: a Placeholder stands for a subgraph that a "
                           f"custom Mutator fills in, and needs a mutator applied to the model "
                           f"(applied_mutators=[...])")
